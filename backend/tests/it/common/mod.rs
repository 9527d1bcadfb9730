//! Test fixtures: real SQLite files in temp folders, the real router on a
//! real loopback socket, the real binary as a process, a blocking HTTP
//! client. What the xtask's tests use too (Postgres, the backend process,
//! the HTTP client, the migrations) comes from the `test-support` crate.

#![allow(dead_code)] // each test file uses its own subset

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use backend::{config::Config, dburl::DatabaseUrl};
use refinery_core::{Runner, Target};
use rusqlite::Connection;
use serde_json::Value;
use tempfile::TempDir;
#[allow(unused_imports)] // each test file uses its own subset
pub use test_support::{
    Backend, Engine, PgDatabase, agent, backend_command, migrations_dir, migrations_for,
    postgres_server, sqlite_url, test_key_file,
};

/// `both!(test, …)`: each `fn test(engine: Engine)` as `test::sqlite` and
/// `test::postgres`, each on its own database (the Postgres one returns
/// early, passing, only where no server is configured and REQUIRE_POSTGRES
/// is unset).
#[allow(unused_macros)] // not every suite runs on both engines
macro_rules! both {
    ($($test:ident),* $(,)?) => {$(
        mod $test {
            #[test]
            fn sqlite() {
                super::$test(super::Engine::Sqlite);
            }
            #[test]
            fn postgres() {
                super::$test(super::Engine::Postgres);
            }
        }
    )*};
}

/// The backend binary cargo built for these tests.
pub fn backend_binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_backend"))
}

/// `backend token ARGS…` on `database_url`, run by the real binary with
/// nothing else from the test's environment.
pub fn token_command(database_url: &str, args: &[&str]) -> std::process::Output {
    test_support::token_command(backend_binary(), database_url, args)
}

/// A new token named `name` on `database_url`, as `backend token create`
/// prints it (the one line of its stdout).
pub fn create_token(database_url: &str, name: &str) -> String {
    test_support::create_token(backend_binary(), database_url, name)
}

/// A database in `dir` migrated by refinery up to `version` (None: all).
/// Production migrations go through `cargo xtask migrate`, tested in the xtask;
/// here refinery's own runner only builds fixtures.
pub fn migrated_db(dir: &Path, version: Option<i32>) -> PathBuf {
    let path = dir.join("secrets.db");
    let mut conn = Connection::open(&path).unwrap();
    let migrations = migrations_for(Engine::Sqlite);
    let target = version.map_or(Target::Latest, Target::Version);
    Runner::new(&migrations)
        .set_grouped(true)
        .set_target(target)
        .run(&mut conn)
        .unwrap();
    path
}

pub fn config(dir: &Path, database: PathBuf) -> Config {
    let database = DatabaseUrl::Sqlite(database);
    Config {
        maintenance_flag: database.default_maintenance_flag(),
        database,
        addr: "127.0.0.1:0".into(),
        frontend_dir: dir.join("no-ui"),
        sweep_interval: Duration::from_millis(200),
        pool_size: backend::config::DEFAULT_POOL_SIZE,
        key_file: test_key_file(),
    }
}

/// The real router serving on a loopback port from a background runtime.
pub struct Server {
    pub base: String,
    pub dir: TempDir,
    pub db: PathBuf,
    pub flag: PathBuf,
    /// The Postgres database when the server runs on Postgres (dropped last).
    pub pg: Option<PgDatabase>,
    /// The `DATABASE_URL` of the server's database, for `backend token`.
    pub database_url: String,
    /// A token (named `tests`) that every request of `get`, `post_json`,
    /// `delete`, … sends.
    pub token: String,
    agent: ureq::Agent,
}

impl Server {
    pub fn start() -> Server {
        let dir = TempDir::new().unwrap();
        let db = migrated_db(dir.path(), None);
        Self::start_with(dir, db)
    }

    /// A server on a fully migrated database of `engine`; None when the
    /// test is skipped (no Postgres server configured).
    pub fn start_on(engine: Engine, test: &str) -> Option<Server> {
        match engine {
            Engine::Sqlite => Some(Self::start()),
            Engine::Postgres => {
                let pg = PgDatabase::create(&postgres_server(test)?);
                pg.migrate(None);
                let dir = TempDir::new().unwrap();
                let mut config = config(dir.path(), dir.path().join("unused.db"));
                config.database = DatabaseUrl::parse(&pg.url).unwrap();
                config.maintenance_flag = dir.path().join("maintenance");
                Some(Self::serve(dir, config, Some(pg)))
            }
        }
    }

    pub fn start_with(dir: TempDir, db: PathBuf) -> Server {
        let config = config(dir.path(), db);
        Self::serve(dir, config, None)
    }

    fn serve(dir: TempDir, config: Config, pg: Option<PgDatabase>) -> Server {
        let db = config
            .database
            .sqlite_path()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let flag = config.maintenance_flag.clone();
        let database_url = match &pg {
            Some(pg) => pg.url.clone(),
            None => sqlite_url(&db),
        };
        let token = create_token(&database_url, "tests");
        let state = backend::app::prepare(config).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                backend::app::run(listener, state, std::future::pending())
                    .await
                    .unwrap();
            });
        });
        let addr = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        Server {
            base: format!("http://{addr}"),
            dir,
            db,
            flag,
            pg,
            database_url,
            token,
            agent: agent(),
        }
    }

    /// `Bearer <the server's token>`.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.token)
    }

    /// Runs one SQL statement on the server's database, whichever engine;
    /// returns the first column of the first row as an integer, if any.
    pub fn sql(&self, statement: &str) -> Option<i64> {
        match &self.pg {
            Some(pg) => pg
                .client()
                .query(statement, &[])
                .unwrap()
                .first()
                .map(|row| row.get(0)),
            None => {
                let conn = Connection::open(&self.db).unwrap();
                let mut stmt = conn.prepare(statement).unwrap();
                let mut rows = stmt.query([]).unwrap();
                rows.next().unwrap().map(|row| row.get(0).unwrap())
            }
        }
    }

    pub fn get(&self, path: &str) -> Reply {
        self.get_with(path, Some(&self.bearer()))
    }

    /// A GET with this `Authorization` header (None: without one).
    pub fn get_with(&self, path: &str, authorization: Option<&str>) -> Reply {
        let mut request = self.agent.get(format!("{}{path}", self.base));
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        Reply::from(request.call())
    }

    pub fn delete(&self, path: &str) -> Reply {
        Reply::from(
            self.agent
                .delete(format!("{}{path}", self.base))
                .header("authorization", self.bearer())
                .call(),
        )
    }

    pub fn post_json(&self, path: &str, body: &Value) -> Reply {
        Reply::from(
            self.agent
                .post(format!("{}{path}", self.base))
                .header("authorization", self.bearer())
                .send_json(body),
        )
    }

    /// Sends only the head of a request over raw TCP (the server's token
    /// added after its first line) and returns the status
    /// code: for a body the server must refuse from its declared length
    /// alone (sending the body too would race the server's early close).
    pub fn status_of_head(&self, head: &str) -> u16 {
        use std::io::{Read, Write};
        let (request_line, rest) = head.split_once("\r\n").unwrap();
        let head = format!(
            "{request_line}\r\nAuthorization: {}\r\n{rest}",
            self.bearer()
        );
        let addr = self.base.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(head.as_bytes()).unwrap();
        let mut answer = [0u8; 12];
        stream.read_exact(&mut answer).unwrap();
        let status_line = String::from_utf8_lossy(&answer).into_owned();
        status_line[9..12]
            .parse()
            .unwrap_or_else(|_| panic!("no status in {status_line:?}"))
    }

    pub fn post_raw(&self, path: &str, content_type: &str, body: &[u8]) -> Reply {
        Reply::from(
            self.agent
                .post(format!("{}{path}", self.base))
                .header("authorization", self.bearer())
                .header("content-type", content_type)
                .send(body),
        )
    }
}

/// An HTTP answer: status, Retry-After, body text.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub retry_after: Option<String>,
    /// Every response header, names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    fn from(result: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
        let mut response = result.expect("HTTP request failed at the transport level");
        Reply {
            status: response.status().as_u16(),
            retry_after: response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned()),
            headers: response
                .headers()
                .iter()
                .map(|(name, value)| {
                    (
                        name.as_str().to_ascii_lowercase(),
                        value.to_str().unwrap_or("<not text>").to_owned(),
                    )
                })
                .collect(),
            body: response.body_mut().read_to_string().unwrap(),
        }
    }

    /// The value of header `name` (lower-case), if the answer has it.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}
