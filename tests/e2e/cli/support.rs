//! What the terminal client's tests need besides the harness: the `tickwire` binary (built once
//! per run), a running client with its output collected line by line, a TCP forwarder that can
//! cut the client off the server and let it back, and a tmux server of its own.

use crate::harness::{root, TempDir};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The `tickwire` binary of this build profile, built once per test run (from a clean clone
/// too): `cargo build -p tickwire-cli` next to the test binary (target/<profile>/).
pub fn bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("test binary path");
        // target/<profile>/deps/e2e-<hash>
        let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>").to_path_buf();
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.current_dir(root()).args(["build", "--quiet", "-p", "tickwire-cli"]);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build -p tickwire-cli");
        assert!(status.success(), "cargo build -p tickwire-cli: {status}");
        let bin = profile_dir.join("tickwire");
        assert!(bin.exists(), "no {} after the build", bin.display());
        bin
    })
}

/// `tickwire args` with `env` set, and TICKWIRE_URL and the tokens' variables cleared unless
/// set there (the developer's own must not reach the tests), its output piped.
fn command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args(args).env_remove("TICKWIRE_URL").env_remove("TICKWIRE_TOKEN");
    cmd.env_remove("TICKWIRE_USER_TOKEN").env_remove("TICKWIRE_TOKEN_SECRET");
    cmd.envs(env.iter().copied()).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd
}

/// Runs `tickwire args` to its end with `env` set (see [`command`]), feeding it `stdin`.
pub fn run(args: &[&str], env: &[(&str, &str)], stdin: &str) -> Output {
    let mut child = command(args, env).stdin(Stdio::piped()).spawn().expect("spawn tickwire");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write stdin");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return child.wait_with_output().expect("tickwire output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("tickwire {args:?} did not end within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running `tickwire` whose stdout and stderr lines are collected as they come; killed when
/// dropped if it still runs.
pub struct Running {
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    /// The threads collecting them: each ends at its stream's end, so joined once the process
    /// has exited, they have taken its last lines.
    readers: Vec<JoinHandle<()>>,
}

fn collect(r: impl Read + Send + 'static) -> (Arc<Mutex<Vec<String>>>, JoinHandle<()>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            sink.lock().unwrap_or_else(|e| e.into_inner()).push(line);
        }
    });
    (lines, reader)
}

impl Running {
    /// Starts `tickwire args` (environment as [`command`] sets it) with no stdin.
    pub fn spawn(args: &[&str]) -> Running {
        let mut child = command(args, &[]).stdin(Stdio::null()).spawn().expect("spawn tickwire");
        let (stdout, out_reader) = collect(child.stdout.take().expect("stdout"));
        let (stderr, err_reader) = collect(child.stderr.take().expect("stderr"));
        Running { child, stdout, stderr, readers: vec![out_reader, err_reader] }
    }

    pub fn stdout(&self) -> Vec<String> {
        self.stdout.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn stderr(&self) -> Vec<String> {
        self.stderr.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// stdout's lines as JSON (a line that is not JSON fails the test).
    pub fn json_lines(&self) -> Vec<Value> {
        self.stdout()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l}")))
            .collect()
    }

    /// Waits until `cond` holds for the output; panics with both streams if it does not in time.
    pub fn wait(&self, what: &str, timeout: Duration, cond: impl Fn(&Running) -> bool) {
        let deadline = Instant::now() + timeout;
        while !cond(self) {
            if Instant::now() > deadline {
                panic!(
                    "{what}: not within {timeout:?}\nstdout:\n{}\nstderr:\n{}",
                    self.stdout().join("\n"),
                    self.stderr().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The number of stderr lines containing `text`.
    pub fn stderr_count(&self, text: &str) -> usize {
        self.stderr().iter().filter(|l| l.contains(text)).count()
    }

    /// Ctrl-C (SIGINT by PID), then its exit status (killed after 10 s), with every line it
    /// wrote collected.
    pub fn interrupt(&mut self) -> ExitStatus {
        // SAFETY: kill only sends a signal to this child's PID.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                for reader in self.readers.drain(..) {
                    let _ = reader.join();
                }
                return status;
            }
            assert!(Instant::now() < deadline, "tickwire did not exit within 10 s of SIGINT");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A TCP forwarder on 127.0.0.1 in front of `target`: the client connects through it, and the
/// test cuts it (live connections closed, new ones accepted and closed at once) and restores it,
/// so it knows what happened while the client was away. Its port stays bound from start to drop,
/// so no other test's server can take it while the forwarder is cut.
pub struct Forwarder {
    pub port: u16,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    open: AtomicBool,
    stop: AtomicBool,
    /// Both ends of every forwarded connection, so that a cut can close them.
    live: Mutex<Vec<TcpStream>>,
}

impl Forwarder {
    pub fn start(target: u16) -> Forwarder {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind forwarder");
        let port = listener.local_addr().expect("forwarder addr").port();
        // Non-blocking, so the accept loop sees `stop` without a connection to wake it.
        listener.set_nonblocking(true).expect("non-blocking forwarder");
        let shared = Arc::new(Shared {
            open: AtomicBool::new(true),
            stop: AtomicBool::new(false),
            live: Mutex::new(Vec::new()),
        });
        let s = shared.clone();
        let thread = std::thread::spawn(move || accept_loop(&listener, target, &s));
        Forwarder { port, shared, thread: Some(thread) }
    }

    /// Closes every forwarded connection, and every new one as soon as it is accepted, until
    /// [`Forwarder::restore`].
    pub fn cut(&self) {
        self.shared.open.store(false, Ordering::SeqCst);
        // After `open` is false: a connection being set up now either is in `live` already or
        // sees `open` false under this lock (see `forward`).
        for s in self.shared.live.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    pub fn restore(&self) {
        self.shared.open.store(true, Ordering::SeqCst);
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.cut();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, target: u16, s: &Shared) {
    while !s.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((client, _)) if s.open.load(Ordering::SeqCst) => forward(client, target, s),
            Ok((client, _)) => drop(client), // cut: the client sees its connection end at once
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

fn forward(client: TcpStream, target: u16, s: &Shared) {
    let _ = client.set_nonblocking(false);
    let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else { return };
    let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else { return };
    {
        let mut live = s.live.lock().unwrap_or_else(|e| e.into_inner());
        // Cut while this connection was being set up: it ends here, as the others did.
        if !s.open.load(Ordering::SeqCst) {
            return;
        }
        live.extend([c2, s2]);
    }
    let pipe = |mut from: TcpStream, mut to: TcpStream| {
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut from, &mut to);
            let _ = to.shutdown(Shutdown::Both);
            let _ = from.shutdown(Shutdown::Both);
        });
    };
    if let (Ok(c3), Ok(s3)) = (client.try_clone(), server.try_clone()) {
        pipe(client, s3);
        pipe(server, c3);
    }
}

/// A tmux server of the test's own (its socket in a temp dir), killed when dropped.
pub struct Tmux {
    socket: PathBuf,
    dir: TempDir,
}

impl Tmux {
    pub fn new(tag: &str) -> Tmux {
        let dir = TempDir::new(tag);
        Tmux { socket: dir.0.join("tmux.sock"), dir }
    }

    /// `name` in the server's temp dir (removed with it): for files a pane's command writes.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.0.join(name)
    }

    /// Runs tmux with `args` on this server; its stdout.
    pub fn cmd(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(["-f", "/dev/null"])
            .args(args)
            .output()
            .expect("tmux (scripts/setup installs it)");
        assert!(out.status.success(), "tmux {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").arg("-S").arg(&self.socket).arg("kill-server").output();
    }
}
