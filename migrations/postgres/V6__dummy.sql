-- Postgres twin of ../V6__dummy.sql
CREATE TABLE dummy_six (id BIGINT PRIMARY KEY);
