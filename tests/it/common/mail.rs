//! A real SMTP server for the tests: `tests/smtp/sink.py` (aiosmtpd) started once per
//! test process, requiring AUTH, writing each delivered message as JSON into a maildir.
//!
//! The sink runs in a Python venv at `target/test-smtp-venv`, created on first use with
//! `python3 -m venv` and `pip install aiosmtpd` (set LATCHKEY_TEST_SMTP_PYTHON to a Python
//! that already has aiosmtpd to skip that). It exits when this process does: it watches
//! the stdin pipe held here.
//!
//! Tests send to unique addresses (`unique_address`) so that parallel tests never read
//! each other's mail.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use latchkey::config::Config;

pub const SMTP_USERNAME: &str = "latchkey";
pub const SMTP_PASSWORD: &str = "sink-secret";

/// How long `wait_for_mail` waits for a message to arrive.
const MAIL_WAIT: Duration = Duration::from_secs(10);

pub struct MailSink {
    pub port: u16,
    maildir: PathBuf,
    /// The sink exits when this pipe closes, that is when the test process ends.
    _stdin: Mutex<ChildStdin>,
}

/// One delivered message, as the sink decoded it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ReceivedMail {
    pub subject: String,
    pub from: String,
    pub to: String,
    pub text: String,
    pub html: String,
}

/// The SMTP sink shared by every test in this process.
pub fn mail_sink() -> &'static MailSink {
    static SINK: OnceLock<MailSink> = OnceLock::new();
    SINK.get_or_init(MailSink::start)
}

/// A fresh recipient address no other test uses.
pub fn unique_address(label: &str) -> String {
    format!("{label}-{}@example.com", uuid::Uuid::new_v4().simple())
}

impl MailSink {
    fn start() -> MailSink {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"));
        let python = python_with_aiosmtpd(workspace);
        let maildir = tempfile::Builder::new()
            .prefix("latchkey-mail-")
            .tempdir()
            .expect("temp dir for the mail sink")
            .keep();
        let mut child = Command::new(&python)
            .arg(workspace.join("tests/smtp/sink.py"))
            .arg(&maildir)
            .arg("--remove-on-exit")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start the SMTP sink with {}: {e}", python.display())
            });
        let stdin = child.stdin.take().expect("sink stdin");
        let stdout = child.stdout.take().expect("sink stdout");
        // Read the port on a thread so a sink that hangs fails the test instead.
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let read = std::io::BufReader::new(stdout).read_line(&mut line);
            let _ = sender.send(read.map(|_| line));
        });
        let line = match receiver.recv_timeout(Duration::from_secs(30)) {
            Ok(Ok(line)) => line,
            Ok(Err(e)) => panic!("reading the SMTP sink's port: {e}"),
            Err(_) => panic!("the SMTP sink did not print its port within 30 s"),
        };
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| {
                let status = child.try_wait().ok().flatten();
                panic!("the SMTP sink printed {line:?} instead of `PORT <n>` (exit status {status:?}; its stderr is above)")
            });
        MailSink {
            port,
            maildir,
            _stdin: Mutex::new(stdin),
        }
    }

    /// Points the server's mail settings at the sink, with the right credentials.
    pub fn configure(&self, config: &mut Config) {
        config.mail_transport = "smtp".into();
        config.smtp_host = "127.0.0.1".into();
        config.smtp_port = i64::from(self.port);
        config.smtp_tls = "none".into();
        config.smtp_username = SMTP_USERNAME.into();
        config.smtp_password = SMTP_PASSWORD.into();
    }

    fn mailbox(&self, to: &str) -> PathBuf {
        self.maildir.join(to.to_lowercase())
    }

    /// Unread messages for `to`, oldest first.
    fn unread(&self, to: &str) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(self.mailbox(to)) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
            .collect();
        files.sort();
        files
    }

    /// The oldest message for `to` not read yet, waiting up to 10 s for one to arrive.
    /// Marks it read.
    pub async fn wait_for_mail(&self, to: &str) -> ReceivedMail {
        let deadline = tokio::time::Instant::now() + MAIL_WAIT;
        loop {
            if let Some(path) = self.unread(to).into_iter().next() {
                let json = std::fs::read(&path).expect("read a delivered message");
                std::fs::rename(&path, path.with_extension("json.read"))
                    .expect("mark a message read");
                return serde_json::from_slice(&json).expect("the sink writes valid JSON");
            }
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "no mail for {to} arrived at the SMTP sink within {} s",
                    MAIL_WAIT.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// True when `to` has no unread message. Mail is on disk before the sink accepts it,
    /// so this is reliable as soon as a send has returned.
    pub fn mailbox_is_empty(&self, to: &str) -> bool {
        self.unread(to).is_empty()
    }
}

impl ReceivedMail {
    /// The first URL in the text part that starts with `prefix`.
    pub fn link_starting_with(&self, prefix: &str) -> String {
        self.text
            .split_whitespace()
            .find(|word| word.starts_with(prefix))
            .map(|word| {
                word.trim_end_matches(['.', ',', ';', ':', ')', '>', '"', '\''])
                    .to_string()
            })
            .unwrap_or_else(|| panic!("no link starting with {prefix} in:\n{}", self.text))
    }

    /// The first standalone 6-digit number in the text part.
    pub fn six_digit_code(&self) -> String {
        self.text
            .split_whitespace()
            .map(|word| word.trim_matches(|c: char| !c.is_ascii_alphanumeric()))
            .find(|word| word.len() == 6 && word.bytes().all(|b| b.is_ascii_digit()))
            .map(str::to_string)
            .unwrap_or_else(|| panic!("no 6-digit code in:\n{}", self.text))
    }
}

/// A Python that can import aiosmtpd: LATCHKEY_TEST_SMTP_PYTHON, or the venv in
/// `target/test-smtp-venv`, created if needed. A lock file keeps two test processes
/// from building it at the same time.
fn python_with_aiosmtpd(workspace: &Path) -> PathBuf {
    if let Ok(python) = std::env::var("LATCHKEY_TEST_SMTP_PYTHON")
        && !python.is_empty()
    {
        return PathBuf::from(python);
    }
    let target = workspace.join("target");
    std::fs::create_dir_all(&target).expect("create target/");
    let venv = target.join("test-smtp-venv");
    let python = venv.join("bin/python");
    if imports_aiosmtpd(&python) {
        return python;
    }
    let lock = std::fs::File::create(target.join("test-smtp-venv.lock")).expect("venv lock file");
    lock.lock().expect("lock the venv lock file");
    // Another process may have built it while this one waited for the lock.
    if !imports_aiosmtpd(&python) {
        run(
            Command::new("python3")
                .args(["-m", "venv", "--clear"])
                .arg(&venv),
            "python3 -m venv (is Python 3 with the venv module installed?)",
        );
        run(
            Command::new(&python).args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "aiosmtpd",
            ]),
            "pip install aiosmtpd (needs access to PyPI, or set LATCHKEY_TEST_SMTP_PYTHON)",
        );
        assert!(
            imports_aiosmtpd(&python),
            "{} still cannot import aiosmtpd after installing it",
            python.display()
        );
    }
    drop(lock);
    python
}

fn imports_aiosmtpd(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn run(command: &mut Command, what: &str) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
