//! Test harness: starts a throwaway PostgreSQL (TLS only, SCRAM passwords) and Redis
//! (TLS only, password) in temporary directories on free ports, with certificates from
//! a test CA, and stops them on drop. When a binary is missing the caller prints
//! `SKIPPED` and returns. Used by the bot server's integration tests and by the
//! end-to-end suite.

// Test code: a panic here is a failed test, as in #[test] functions (see clippy.toml).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Prints a skip notice past libtest's capture.
pub fn skip(test: &str, why: &str) {
    let _ = std::io::stderr().write_all(format!("SKIPPED {test}: {why}\n").as_bytes());
}

/// A fresh temporary directory.
pub fn temp_dir(prefix: &str) -> PathBuf {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    let d = std::env::temp_dir().join(format!("{prefix}-{:016x}", u64::from_le_bytes(b)));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Writes a file with a mode (replacing one, even read-only).
pub fn write(path: &Path, body: impl AsRef<[u8]>, mode: u32) {
    let _ = std::fs::remove_file(path);
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A test CA and a server certificate for 127.0.0.1 and localhost, as PEM files.
pub struct TestPki {
    /// CA certificate.
    pub ca: PathBuf,
    /// Server certificate.
    pub cert: PathBuf,
    /// Server key.
    pub key: PathBuf,
    /// A client certificate signed by the CA (for mutual TLS).
    pub client_cert: PathBuf,
    /// Its key.
    pub client_key: PathBuf,
}

impl TestPki {
    /// Generates the CA and server certificate in `dir`.
    pub fn generate(dir: &Path) -> Self {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "generalbot test ca");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "localhost");
        let cert = params.signed_by(&key, &issuer).unwrap();
        let client_key = rcgen::KeyPair::generate().unwrap();
        let mut client_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        client_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "generalbot test client");
        client_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let client_cert = client_params.signed_by(&client_key, &issuer).unwrap();
        let pki = Self {
            ca: dir.join("ca.crt"),
            cert: dir.join("server.crt"),
            key: dir.join("server.key"),
            client_cert: dir.join("client.crt"),
            client_key: dir.join("client.key"),
        };
        write(&pki.ca, ca_cert.pem(), 0o444);
        write(&pki.cert, cert.pem(), 0o444);
        write(&pki.key, key.serialize_pem(), 0o600);
        write(&pki.client_cert, client_cert.pem(), 0o444);
        write(&pki.client_key, client_key.serialize_pem(), 0o600);
        pki
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// Runs a PostgreSQL binary, as `postgres` when we are root (initdb refuses root).
fn pg(bin: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    };
    cmd.args(args).output().unwrap()
}

/// The directory of PostgreSQL's server binaries, if installed.
pub fn pg_bindir() -> Option<PathBuf> {
    let fixed = PathBuf::from("/usr/lib/postgresql/15/bin");
    if fixed.join("initdb").exists() {
        return Some(fixed);
    }
    let out = Command::new("pg_config").arg("--bindir").output().ok()?;
    let dir = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    dir.join("initdb").exists().then_some(dir)
}

/// A running PostgreSQL.
pub struct Postgres {
    /// Its directory.
    pub dir: PathBuf,
    /// Server binaries.
    pub bin: PathBuf,
    /// Its TCP port.
    pub port: u16,
    /// The CA of its certificate.
    pub ca: PathBuf,
    /// The server's runtime role: not a superuser, owns nothing (the owner grants it
    /// what the server uses when it migrates).
    pub user: String,
    /// Its password.
    pub password: String,
    /// The role that owns the database and runs migrations.
    pub owner: String,
    /// Its password.
    pub owner_password: String,
    /// The database.
    pub database: String,
}

impl Postgres {
    /// Starts one; `Err` says why it cannot.
    pub fn start() -> Result<Self, String> {
        let bin = pg_bindir()
            .ok_or("PostgreSQL server binaries not found (apt-get install postgresql)")?;
        if is_root()
            && Command::new("id")
                .arg("postgres")
                .output()
                .map(|o| !o.status.success())
                .unwrap_or(true)
        {
            return Err("no postgres user to run the server as".into());
        }
        let dir = temp_dir("gb-pg");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let pki = TestPki::generate(&dir);
        if is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown failed");
        }
        let data = dir.join("data");
        let data_s = data.to_str().unwrap();
        let out = pg(
            &bin.join("initdb"),
            &[
                "-D",
                data_s,
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
            ],
        );
        if !out.status.success() {
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let port = free_port();
        let conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{d}'\nssl = on\nssl_cert_file = '{c}'\nssl_key_file = '{k}'\nssl_min_protocol_version = 'TLSv1.3'\npassword_encryption = 'scram-sha-256'\nfsync = off\n",
            d = dir.display(),
            c = pki.cert.display(),
            k = pki.key.display()
        );
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .unwrap();
        f.write_all(conf.as_bytes()).unwrap();
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\nhostnossl all all 0.0.0.0/0 reject\n",
        )
        .unwrap();
        let log = dir.join("pg.log");
        let out = pg(
            &bin.join("pg_ctl"),
            &[
                "-D",
                data_s,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        if !out.status.success() {
            return Err(format!(
                "pg_ctl start failed: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            ));
        }
        let pg = Self {
            dir: dir.clone(),
            bin,
            port,
            ca: pki.ca.clone(),
            user: "botserver".into(),
            password: "pg-test-password-7f3a".into(),
            owner: "generalbot_owner".into(),
            owner_password: "pg-test-owner-password-19c4".into(),
            database: "generalbot".into(),
        };
        for (role, password) in [(&pg.user, &pg.password), (&pg.owner, &pg.owner_password)] {
            pg.psql(
                "postgres",
                &format!(
                    "CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '{password}'"
                ),
            );
        }
        pg.psql(
            "postgres",
            &format!("CREATE DATABASE {} OWNER {}", pg.database, pg.owner),
        );
        Ok(pg)
    }

    /// Runs SQL as the superuser over the Unix socket; returns stdout.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        match self.try_psql(db, sql) {
            Ok(out) => out,
            Err(e) => panic!("psql failed: {e}"),
        }
    }

    /// Runs SQL as the superuser over the Unix socket; stdout, or stderr on failure.
    pub fn try_psql(&self, db: &str, sql: &str) -> Result<String, String> {
        let out = pg(
            &self.bin.join("psql"),
            &[
                "-h",
                self.dir.to_str().unwrap(),
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                db,
                "-v",
                "ON_ERROR_STOP=1",
                "-At",
                "-c",
                sql,
            ],
        );
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// A plain-text dump of the application database.
    pub fn dump(&self) -> String {
        let out = pg(
            &self.bin.join("pg_dump"),
            &[
                "-h",
                self.dir.to_str().unwrap(),
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                &self.database,
            ],
        );
        assert!(
            out.status.success(),
            "pg_dump failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = pg(
            &self.bin.join("pg_ctl"),
            &["-D", data.to_str().unwrap(), "-m", "immediate", "stop"],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A running Redis, TLS only, with a password.
pub struct Redis {
    /// Its directory.
    pub dir: PathBuf,
    /// Its TLS port.
    pub port: u16,
    /// The CA of its certificate.
    pub ca: PathBuf,
    /// Its password.
    pub password: String,
    /// The client certificate and key it requires, when it requires one.
    pub client: Option<(PathBuf, PathBuf)>,
    /// Its process id, when known (to read its memory).
    pub pid: Option<String>,
}

impl Redis {
    /// Starts one; `Err` says why it cannot.
    pub fn start() -> Result<Self, String> {
        Self::start_with(false)
    }

    /// Starts one that refuses clients without a certificate from its CA (mutual TLS).
    pub fn start_mutual() -> Result<Self, String> {
        Self::start_with(true)
    }

    fn start_with(mutual: bool) -> Result<Self, String> {
        let bin =
            which("redis-server").ok_or("redis-server not found (apt-get install redis-server)")?;
        let dir = temp_dir("gb-redis");
        let pki = TestPki::generate(&dir);
        let port = free_port();
        let password = "redis-test-password-91c2".to_string();
        let pidfile = dir.join("r.pid");
        let out = Command::new(bin)
            .args([
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .args([
                "--tls-cert-file",
                pki.cert.to_str().unwrap(),
                "--tls-key-file",
                pki.key.to_str().unwrap(),
            ])
            .args([
                "--tls-ca-cert-file",
                pki.ca.to_str().unwrap(),
                "--tls-auth-clients",
                if mutual { "yes" } else { "no" },
                "--tls-protocols",
                "TLSv1.3",
            ])
            .args([
                "--requirepass",
                &password,
                "--dir",
                dir.to_str().unwrap(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args([
                "--daemonize",
                "yes",
                "--pidfile",
                pidfile.to_str().unwrap(),
                "--logfile",
                dir.join("r.log").to_str().unwrap(),
            ])
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "redis-server failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let pid = std::fs::read_to_string(&pidfile)
            .ok()
            .map(|p| p.trim().to_owned());
        Ok(Self {
            dir,
            port,
            ca: pki.ca,
            password,
            client: mutual.then_some((pki.client_cert, pki.client_key)),
            pid,
        })
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(pid) = &self.pid {
            let _ = Command::new("kill").arg(pid).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The path of a program on `PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .chain([
            PathBuf::from("/usr/bin").join(name),
            PathBuf::from("/usr/sbin").join(name),
        ])
        .find(|p| p.exists())
}

/// A running S3 server (moto, through `moto/serve.py`), TLS only, with a test CA; the credentials it takes are
/// any, the tests use [`Moto::ACCESS_KEY`] and [`Moto::SECRET_KEY`].
pub struct Moto {
    /// Its directory.
    pub dir: PathBuf,
    /// Its TLS port.
    pub port: u16,
    /// The CA of its certificate.
    pub ca: PathBuf,
    child: std::process::Child,
}

impl Moto {
    /// Access key id the tests sign with.
    pub const ACCESS_KEY: &'static str = "gb-test-access-key";
    /// Secret key the tests sign with.
    pub const SECRET_KEY: &'static str = "gb-test-secret-key-5d1e";

    /// Starts one; `Err` says why it cannot.
    pub fn start() -> Result<Self, String> {
        let python = which("python3").ok_or("python3 not found")?;
        let ok = Command::new(&python)
            .args(["-c", "import moto.server"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !ok {
            return Err("moto's server is not installed (pip install 'moto[server]')".into());
        }
        let dir = temp_dir("gb-moto");
        let pki = TestPki::generate(&dir);
        let port = free_port();
        // moto_server, with the XML root of each S3 response named as S3 names it
        // (see moto/serve.py).
        let child = Command::new(python)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("moto/serve.py"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .args([
                "-c",
                pki.cert.to_str().unwrap(),
                "-k",
                pki.key.to_str().unwrap(),
            ])
            .env("AWS_ACCESS_KEY_ID", Self::ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", Self::SECRET_KEY)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .stdout(std::fs::File::create(dir.join("moto.log")).unwrap())
            .stderr(std::fs::File::create(dir.join("moto.err")).unwrap())
            .spawn()
            .map_err(|e| e.to_string())?;
        let moto = Self {
            dir,
            port,
            ca: pki.ca,
            child,
        };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(moto);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Err(format!(
            "moto_server did not listen on {port}: {}",
            std::fs::read_to_string(moto.dir.join("moto.err")).unwrap_or_default()
        ))
    }

    /// Its endpoint URL.
    pub fn endpoint(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
