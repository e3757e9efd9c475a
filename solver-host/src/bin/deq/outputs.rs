//! Output files: checked and staged before any work, then written together or not at
//! all.
//!
//! What a command promises about its outputs:
//!
//! * An output must be a regular file or not exist yet. A directory, a device (such as
//!   `/dev/null`), a FIFO or a socket is refused before any work: it is never replaced
//!   by a regular file and never written in place. A symbolic link is followed: the file
//!   it names is replaced, the link stays.
//! * An output that is the same file as an input of the command, or as another output
//!   of it, is refused before any work. "The same" is decided by identity (device and
//!   inode) and by canonical path, not by how the paths are spelled, so `./m.st`,
//!   `dir/../m.st` and a hard link to `m.st` are all `m.st`.
//! * Each output is staged as a temporary file beside its target, created before any
//!   work (so "this user cannot write there" is found then, with the system's reason).
//!   Only when every output's contents are in their temporary files are they renamed
//!   over their targets; a failure before that removes every temporary file and leaves
//!   every target as it was. The renames themselves (one directory entry each, of files
//!   already written) are the only step that could stop part-way.
//! * SIGINT or SIGTERM at any point removes the temporary files ([`guard_signals`]);
//!   one that arrives during the renames waits for them to finish.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Temporary files that exist now, for the signal thread to remove.
static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// One output: its flag, the path as given, and its staged temporary file.
struct Staged {
    flag: &'static str,
    shown: PathBuf,
    target: PathBuf,
    tmp: PathBuf,
    file: Option<File>,
}

/// The outputs of one command, staged; dropped without [`commit`](Outputs::commit),
/// they leave nothing behind.
pub struct Outputs {
    staged: Vec<Staged>,
}

/// What identifies a file: its canonical path, and on Unix its device and inode.
#[derive(PartialEq, Eq)]
struct Identity {
    path: PathBuf,
    #[cfg(unix)]
    inode: Option<(u64, u64)>,
}

impl Identity {
    /// Two identities name the same file.
    fn same(&self, other: &Identity) -> bool {
        #[cfg(unix)]
        if self.inode.is_some() && self.inode == other.inode {
            return true;
        }
        self.path == other.path
    }
}

fn identity(path: PathBuf, meta: Option<&fs::Metadata>) -> Identity {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Identity { path, inode: meta.map(|m| (m.dev(), m.ino())) }
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        Identity { path }
    }
}

/// Where `path` (the output of `flag`) will be written, and its identity; refuses
/// directories and files that are not regular.
fn resolve(flag: &str, path: &Path) -> Result<(PathBuf, Identity), String> {
    let cannot = |why: String| format!("{flag} {}: {why}", path.display());
    match fs::metadata(path) {
        Ok(meta) => {
            if meta.is_dir() {
                return Err(cannot("is a directory".into()));
            }
            if !meta.is_file() {
                return Err(cannot(
                    "is not a regular file (a device, FIFO or socket); deq writes regular files only".into(),
                ));
            }
            let target = fs::canonicalize(path).map_err(|e| cannot(e.to_string()))?;
            let id = identity(target.clone(), Some(&meta));
            Ok((target, id))
        }
        Err(_) if fs::symlink_metadata(path).is_ok() => {
            Err(cannot("is a symbolic link to nothing (its target does not exist)".into()))
        }
        Err(_) => {
            let name = path.file_name().ok_or_else(|| cannot("names no file".into()))?;
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            let dir =
                fs::canonicalize(dir).map_err(|e| cannot(format!("directory {}: {e}", dir.display())))?;
            let target = dir.join(name);
            let id = identity(target.clone(), None);
            Ok((target, id))
        }
    }
}

/// The identity of an input that exists (one that does not is the loader's to report).
fn input_identity(path: &Path) -> Option<Identity> {
    let meta = fs::metadata(path).ok()?;
    Some(identity(fs::canonicalize(path).ok()?, Some(&meta)))
}

impl Outputs {
    /// Checks every output (`(flag, path)`) against the inputs and the other outputs and
    /// creates its temporary file. Runs before any work, so an output that cannot be
    /// written is an error before a long solve, not after.
    pub fn prepare(
        outputs: &[(&'static str, &Path)],
        inputs: &[(&'static str, &Path)],
    ) -> Result<Self, String> {
        let inputs: Vec<(&str, &Path, Identity)> =
            inputs.iter().filter_map(|&(flag, p)| input_identity(p).map(|id| (flag, p, id))).collect();
        let mut resolved: Vec<(&'static str, &Path, PathBuf, Identity)> = Vec::new();
        for &(flag, path) in outputs {
            let (target, id) = resolve(flag, path)?;
            let clash = inputs
                .iter()
                .map(|(f, p, i)| (*f, *p, i))
                .chain(resolved.iter().map(|(f, p, _, i)| (*f, *p, i)))
                .find(|(_, _, other)| id.same(other));
            if let Some((other_flag, other_path, _)) = clash {
                return Err(format!(
                    "{flag} {} is the same file as {other_flag} {}: refusing to overwrite it",
                    path.display(),
                    other_path.display()
                ));
            }
            resolved.push((flag, path, target, id));
        }
        let mut staged = Outputs { staged: Vec::new() };
        for (flag, path, target, _) in resolved {
            let tmp = temporary(&target);
            register(&tmp);
            let file = fs::OpenOptions::new().write(true).create_new(true).open(&tmp).map_err(|e| {
                unregister(&tmp);
                format!("{flag} {}: cannot write there: {e}", path.display())
            })?;
            staged.staged.push(Staged { flag, shown: path.to_path_buf(), target, tmp, file: Some(file) });
        }
        Ok(staged)
    }

    /// Writes `contents` (one per output, in the order given to
    /// [`prepare`](Self::prepare)) to the temporary files, then renames them all over
    /// their targets. On any write error nothing is renamed.
    pub fn commit(mut self, contents: &[&[u8]]) -> Result<(), String> {
        if contents.len() != self.staged.len() {
            return Err(format!("internal: {} outputs, {} contents", self.staged.len(), contents.len()));
        }
        for (s, bytes) in self.staged.iter_mut().zip(contents) {
            let mut file = s.file.take().ok_or("internal: an output written twice")?;
            file.write_all(bytes)
                .and_then(|()| file.flush())
                .map_err(|e| format!("{} {}: cannot write: {e}", s.flag, s.shown.display()))?;
        }
        // Held through the renames: a signal waits for them rather than cutting them short.
        let mut pending = PENDING.lock().unwrap_or_else(|e| e.into_inner());
        for s in std::mem::take(&mut self.staged) {
            pending.retain(|p| *p != s.tmp);
            if let Err(e) = fs::rename(&s.tmp, &s.target) {
                let _ = fs::remove_file(&s.tmp);
                return Err(format!("{} {}: cannot write: {e}", s.flag, s.shown.display()));
            }
        }
        Ok(())
    }
}

impl Drop for Outputs {
    fn drop(&mut self) {
        for s in &self.staged {
            let _ = fs::remove_file(&s.tmp);
            unregister(&s.tmp);
        }
    }
}

/// A fresh temporary name beside `target`.
fn temporary(target: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    target.with_file_name(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

fn register(tmp: &Path) {
    PENDING.lock().unwrap_or_else(|e| e.into_inner()).push(tmp.to_path_buf());
}

fn unregister(tmp: &Path) {
    PENDING.lock().unwrap_or_else(|e| e.into_inner()).retain(|p| p != tmp);
}

/// Blocks SIGINT and SIGTERM in this thread (and so in every thread started after it)
/// and starts a thread that waits for them: on one, it removes the pending temporary
/// files and exits with status 128 + the signal, as the default action would report.
/// Call first thing in `main`, before any other thread exists.
#[cfg(unix)]
pub fn guard_signals() {
    // SAFETY: plain libc calls on a local, initialised signal set.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return;
        }
        set
    };
    let spawned = std::thread::Builder::new().name("deq-signals".into()).spawn(move || {
        let mut sig: libc::c_int = 0;
        // SAFETY: `set` is an initialised signal set and `sig` a valid out-pointer.
        while unsafe { libc::sigwait(&set, &mut sig) } != 0 {}
        let pending = PENDING.lock().unwrap_or_else(|e| e.into_inner());
        for p in pending.iter() {
            let _ = fs::remove_file(p);
        }
        std::process::exit(128 + sig);
    });
    if spawned.is_err() {
        // No thread to handle them: let the signals act as before.
        // SAFETY: as above.
        unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()) };
    }
}

/// Elsewhere, signals keep their default action.
#[cfg(not(unix))]
pub fn guard_signals() {}
