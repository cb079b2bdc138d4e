//! Development restarts (`tickwire serve --dev`): a game developer edits the rules, rebuilds,
//! restarts the server, and keeps playing the same match.
//!
//! On shutdown each room saves itself exactly (the rolling restart's save,
//! [`tickwire_shared::room::RoomCore::save`]) to `DIR/rooms/{room}.room` (`.named.room` for a
//! named room), and its sessions are closed as at any shutdown (1001). At the next start the
//! saved rooms are restored from the saved tick, their players waiting for their resume
//! tokens; the browser client reconnects by itself and resumes as the same entity. The JWT
//! secret of a server without `--jwt-secret` is kept in `DIR/jwt-secret`, so tokens outlive the
//! restart; and a resume token is honoured whoever presents it (a page that reconnected with a
//! new guest token is the same player): development only.
//!
//! A save that no longer restores (a component's fields changed, a component was added or
//! removed) is set aside as `DIR/rooms/{file}.failed` with the reason in the log; the room
//! starts afresh when a player joins it.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use tickwire_shared::join::valid_room;

use crate::auth::random_hex;
use crate::rooms::Rooms;
use crate::state::AppState;

/// The file that keeps a `--dev` server's JWT secret.
const SECRET_FILE: &str = "jwt-secret";

/// The folder rooms are saved in.
const ROOMS_DIR: &str = "rooms";

/// A saved room's file name ends with this (`.named.room` for a named room).
const ROOM_SUFFIX: &str = ".room";

const NAMED_SUFFIX: &str = ".named.room";

/// The JWT secret a `--dev` server signs with when none is given: the one kept in `dir`, made
/// (and kept, readable by the owner only) on the first start.
///
/// # Errors
///
/// When the directory or the file cannot be made or read.
pub fn secret(dir: &Path) -> anyhow::Result<String> {
    std::fs::create_dir_all(dir).with_context(|| format!("making {}", dir.display()))?;
    let path = dir.join(SECRET_FILE);
    if let Ok(text) = std::fs::read_to_string(&path) {
        let kept = text.trim();
        if kept.len() >= 32 {
            return Ok(kept.to_owned());
        }
    }
    let secret = random_hex(32);
    write_atomically(&path, secret.as_bytes(), true)?;
    Ok(secret)
}

fn write_atomically(path: &Path, bytes: &[u8], private: bool) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
    file.write_all(bytes).with_context(|| format!("writing {}", tmp.display()))?;
    file.sync_all().ok();
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}

/// Restores the rooms saved in `dir` (and removes their files; one that does not restore is
/// set aside as `.failed`). Returns the ids of the rooms restored.
pub fn restore_rooms(rooms: &Rooms, dir: &Path) -> Vec<String> {
    let folder = dir.join(ROOMS_DIR);
    let Ok(entries) = std::fs::read_dir(&folder) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(ROOM_SUFFIX))
        .collect();
    files.sort();
    let mut restored = Vec::new();
    for path in files {
        let named = path.to_string_lossy().ends_with(NAMED_SUFFIX);
        let result = std::fs::read(&path).context("reading it").and_then(|bytes| {
            if bytes.len() > tickwire_shared::persist::MAX_SAVE_BYTES {
                anyhow::bail!("{} bytes is over the limit", bytes.len());
            }
            rooms.restore(&bytes, named)
        });
        match result {
            Ok(room) => {
                tracing::info!(room = room.id(), players = room.players(), "room restored (--dev)");
                restored.push(room.id().to_owned());
                let _ = std::fs::remove_file(&path);
            }
            Err(e) => {
                tracing::warn!(
                    file = %path.display(),
                    error = %format!("{e:#}"),
                    "a saved room does not restore; set aside as .failed"
                );
                let _ = std::fs::rename(&path, path.with_extension("failed"));
            }
        }
    }
    restored
}

/// Saves every room to `dir` and closes their sessions (1001); returns how many were saved.
pub async fn save_rooms(state: &AppState, dir: &Path) -> usize {
    let rooms = state.rooms.handles();
    if rooms.is_empty() {
        return 0;
    }
    let folder = dir.join(ROOMS_DIR);
    if let Err(e) = std::fs::create_dir_all(&folder) {
        tracing::warn!(error = %e, dir = %folder.display(), "cannot keep the rooms (--dev)");
    }
    for (room, _) in &rooms {
        room.hand_off();
    }
    let saves = crate::handoff::collect_saves(&rooms).await;
    let mut saved = 0;
    for ((room, named), save) in rooms.iter().zip(saves) {
        // Room ids are checked at the join ([A-Za-z0-9_-]): safe as file names.
        let id = room.id();
        let written = match save {
            Some(Ok(bytes)) if valid_room(id) => {
                let suffix = if *named { NAMED_SUFFIX } else { ROOM_SUFFIX };
                write_atomically(&folder.join(format!("{id}{suffix}")), &bytes, false)
                    .map(|()| bytes.len())
            }
            Some(Ok(_)) => Err(anyhow::anyhow!("its id cannot be a file name")),
            Some(Err(why)) => Err(anyhow::anyhow!(why)),
            None => Err(anyhow::anyhow!("it did not save itself in time")),
        };
        match written {
            Ok(bytes) => {
                tracing::info!(room = id, bytes, "room kept for the next start (--dev)");
                saved += 1;
            }
            Err(e) => tracing::warn!(room = id, error = %format!("{e:#}"), "room not kept (--dev)"),
        }
        room.moved(None);
    }
    saved
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_is_made_once_and_kept_private() {
        let dir = std::env::temp_dir().join(format!("tickwire-devsecret-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let first = secret(&dir).unwrap();
        assert_eq!(first.len(), 64);
        assert_eq!(secret(&dir).unwrap(), first, "the next start signs with the same one");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.join(SECRET_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A file too short to be a secret is replaced.
        std::fs::write(dir.join(SECRET_FILE), "short").unwrap();
        assert_ne!(secret(&dir).unwrap(), "short");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
