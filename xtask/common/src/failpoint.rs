//! Named failpoints at the step boundaries of `migrate` and `restore`, for
//! the fault-injection tests (`make test-faults`). Compiled in only with the
//! `failpoints` feature; in a normal build `hit` is an empty inline function.
//!
//! `XTASK_FAILPOINT=<name>=error` makes the step fail there (several,
//! comma-separated: `a=error,b=error`);
//! `XTASK_FAILPOINT=<name>=pause` prints `failpoint <name> reached` to stderr
//! and waits, so the test can kill the process there with SIGKILL;
//! `<name>=wait` prints the same and goes on once a line arrives on stdin,
//! so the test can act (change the database) between two steps.

#[cfg(feature = "failpoints")]
pub fn hit(name: &str) -> anyhow::Result<()> {
    let Ok(spec) = std::env::var("XTASK_FAILPOINT") else {
        return Ok(());
    };
    for one in spec.split(',') {
        match one.split_once('=') {
            Some((point, "error")) if point == name => {
                anyhow::bail!("failpoint `{name}`: injected error")
            }
            Some((point, "pause")) if point == name => {
                eprintln!("failpoint {name} reached");
                loop {
                    std::thread::sleep(std::time::Duration::from_secs(3600));
                }
            }
            Some((point, "wait")) if point == name => {
                eprintln!("failpoint {name} reached");
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &str) -> anyhow::Result<()> {
    Ok(())
}
