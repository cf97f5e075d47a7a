//! The CPU-heavy halves of a backup and a restore, each on one blocking thread fed by a
//! bounded channel (so at most a few blocks are in memory, and the async workers never
//! compress or encrypt): gzip then seal on the way out; open then gunzip and split into
//! lines on the way in.

use std::io::Write as _;

use flate2::Compression;
use flate2::write::{GzDecoder, GzEncoder};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::BackupError;
use crate::objects::sealed::{Opener, Sealer};

/// Blocks in flight between stages.
pub const DEPTH: usize = 4;

/// Compresses and seals the plaintext blocks from `rx`, sending sealed bytes to `tx`;
/// returns the plaintext size.
pub fn seal(
    mut sealer: Sealer,
    mut rx: mpsc::Receiver<Vec<u8>>,
    tx: mpsc::Sender<Vec<u8>>,
) -> JoinHandle<Result<u64, BackupError>> {
    tokio::task::spawn_blocking(move || {
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        let mut plain = 0u64;
        let send = |bytes: Vec<u8>| {
            if bytes.is_empty() {
                return Ok(());
            }
            tx.blocking_send(bytes)
                .map_err(|_| BackupError::Worker("the upload stopped"))
        };
        while let Some(block) = rx.blocking_recv() {
            plain += block.len() as u64;
            gz.write_all(&block).map_err(BackupError::Compress)?;
            let z = std::mem::take(gz.get_mut());
            send(sealer.update(&z).map_err(BackupError::seal(""))?)?;
        }
        let z = gz.finish().map_err(BackupError::Compress)?;
        let mut last = sealer.update(&z).map_err(BackupError::seal(""))?;
        last.extend(sealer.finish().map_err(BackupError::seal(""))?);
        send(last)?;
        Ok(plain)
    })
}

/// Opens and decompresses the sealed bytes from `rx`, sending whole lines to `tx`. The
/// last chunk is authenticated before the end is reported: a cut or altered object
/// fails here, after lines were sent, so the loader must not commit before this returns.
pub fn open(
    key: String,
    mut opener: Opener,
    mut rx: mpsc::Receiver<bytes::Bytes>,
    tx: mpsc::Sender<Vec<String>>,
) -> JoinHandle<Result<(), BackupError>> {
    tokio::task::spawn_blocking(move || {
        let mut gz = GzDecoder::new(Vec::new());
        let mut partial: Vec<u8> = Vec::new();
        let inflate = BackupError::inflate(&key);
        let feed = |gz: &mut GzDecoder<Vec<u8>>, plain: &[u8], partial: &mut Vec<u8>| {
            gz.write_all(plain).map_err(&inflate)?;
            let out = std::mem::take(gz.get_mut());
            let lines = split_lines(partial, &out);
            if !lines.is_empty() && tx.blocking_send(lines).is_err() {
                return Err(BackupError::Worker("the restore stopped"));
            }
            Ok(())
        };
        while let Some(chunk) = rx.blocking_recv() {
            let plain = opener.update(&chunk).map_err(BackupError::seal(&key))?;
            feed(&mut gz, &plain, &mut partial)?;
        }
        let plain = opener.finish().map_err(BackupError::seal(&key))?;
        feed(&mut gz, &plain, &mut partial)?;
        gz.try_finish().map_err(BackupError::inflate(&key))?;
        let out = std::mem::take(gz.get_mut());
        let mut lines = split_lines(&mut partial, &out);
        if !partial.is_empty() {
            lines.push(String::from_utf8_lossy(&partial).into_owned());
        }
        if !lines.is_empty() && tx.blocking_send(lines).is_err() {
            return Err(BackupError::Worker("the restore stopped"));
        }
        Ok(())
    })
}

/// Appends `bytes` to the `partial` line and returns the lines it completed.
pub fn split_lines(partial: &mut Vec<u8>, bytes: &[u8]) -> Vec<String> {
    let mut lines = Vec::new();
    for piece in bytes.split_inclusive(|b| *b == b'\n') {
        match piece.strip_suffix(b"\n") {
            Some(end) => {
                partial.extend_from_slice(end);
                lines.push(String::from_utf8_lossy(partial).into_owned());
                partial.clear();
            }
            None => partial.extend_from_slice(piece),
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_across_any_boundary() {
        let mut partial = Vec::new();
        let mut all = split_lines(&mut partial, b"ab\ncd");
        all.extend(split_lines(&mut partial, b"e\n\nf"));
        all.extend(split_lines(&mut partial, b"g\n"));
        assert_eq!(all, ["ab", "cde", "", "fg"]);
        assert!(partial.is_empty());
    }
}
