//! A throwaway PostgreSQL cluster for the tests of SPEC §8: `initdb` in a temporary folder and
//! `pg_ctl start` on a free port of 127.0.0.1, stopped and deleted when dropped. It needs
//! the server's binaries (Debian's `postgresql` package, which `.ci/run` installs) and fails
//! loudly without them: a PostgreSQL test never passes without a server. `initdb` refuses to
//! run as root, so under root the cluster belongs to the `postgres` user.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A running cluster.
pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

/// The folder of `initdb` and `pg_ctl`: `$SLACK_STATUSD_PG_BIN`, else the newest
/// `/usr/lib/postgresql/*/bin` (Debian), else whatever `PATH` has.
fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SLACK_STATUSD_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    let found = Command::new("sh")
        .args(["-c", "command -v initdb"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    match found {
        Some(path) => Path::new(&path).parent().unwrap().to_path_buf(),
        None => panic!(
            "the PostgreSQL tests need a PostgreSQL server's binaries (initdb, pg_ctl); \
             install them (Debian/Ubuntu: apt-get install postgresql) or point \
             SLACK_STATUSD_PG_BIN at their folder"
        ),
    }
}

/// Whether this process runs as root.
fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Run `program` from `bin` with `args`, as `postgres` when root; panic with its output on
/// failure.
fn run(bin: &Path, program: &str, args: &[&str]) {
    let exe = bin.join(program);
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&exe);
        c
    } else {
        Command::new(&exe)
    };
    let out = cmd
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Cluster {
    /// Create and start a cluster; panics, saying what to install, if it cannot.
    pub fn start() -> Cluster {
        let bin = bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("slack-statusd-pg")
            .tempdir()
            .unwrap();
        if is_root() {
            let out = Command::new("chown")
                .args(["-R", "postgres"])
                .arg(dir.path())
                .output()
                .expect("chown");
            assert!(
                out.status.success(),
                "chown the cluster's folder to postgres"
            );
        }
        let data = dir.path().join("data");
        let data = data.to_str().unwrap();
        run(
            &bin,
            "initdb",
            &[
                "-D",
                data,
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        // A port that was free a moment ago; another process may take it first, so try a few.
        for attempt in 0.. {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let options = format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
                dir.path().display()
            );
            let log = dir.path().join("server.log");
            let started = std::panic::catch_unwind(|| {
                run(
                    &bin,
                    "pg_ctl",
                    &[
                        "-D",
                        data,
                        "-l",
                        log.to_str().unwrap(),
                        "-o",
                        &options,
                        "-w",
                        "start",
                    ],
                )
            });
            match started {
                Ok(()) => return Cluster { dir, bin, port },
                Err(e) if attempt >= 2 => std::panic::resume_unwind(e),
                Err(_) => continue,
            }
        }
        unreachable!()
    }

    /// The URL of its `postgres` database, as the `postgres` user.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = std::panic::catch_unwind(|| {
            run(
                &self.bin,
                "pg_ctl",
                &["-D", data.to_str().unwrap(), "-m", "immediate", "stop"],
            )
        });
    }
}
