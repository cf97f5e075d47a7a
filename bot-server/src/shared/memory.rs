//! Shared state in this process (`--dev`: one replica). Each entry keeps its own end, so
//! purging expired entries never cuts a longer window short; each map is bounded.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Entries per map before expired ones are purged, and the most kept after.
const CAP: usize = 100_000;

#[derive(Default)]
pub(super) struct Memory {
    sessions: Mutex<HashMap<String, (String, Instant)>>,
    counters: Mutex<HashMap<String, (u64, Instant)>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// Makes room for one more entry: expired entries go first, then (only under a flood of
/// new keys) arbitrary ones, so memory stays bounded.
fn make_room<V>(map: &mut HashMap<String, V>, end: impl Fn(&V) -> Instant, now: Instant) {
    if map.len() < CAP {
        return;
    }
    map.retain(|_, v| end(v) > now);
    let excess = map.len().saturating_sub(CAP / 2);
    if excess > 0 {
        let drop: Vec<String> = map.keys().take(excess).cloned().collect();
        for k in drop {
            map.remove(&k);
        }
    }
}

impl Memory {
    pub(super) fn create_session(&self, sid: &str, user_id: &str, ttl: Duration) {
        let now = Instant::now();
        let mut m = lock(&self.sessions);
        make_room(&mut m, |(_, end)| *end, now);
        m.insert(sid.to_owned(), (user_id.to_owned(), now + ttl));
    }

    pub(super) fn touch_session(&self, sid: &str, ttl: Duration) -> Option<String> {
        let now = Instant::now();
        let mut m = lock(&self.sessions);
        match m.get_mut(sid) {
            Some((user, end)) if *end > now => {
                *end = now + ttl;
                Some(user.clone())
            }
            _ => None,
        }
    }

    pub(super) fn end_session(&self, sid: &str) {
        lock(&self.sessions).remove(sid);
    }

    pub(super) fn hit(&self, key: &str, window: Duration) -> (u64, Duration) {
        let now = Instant::now();
        let mut m = lock(&self.counters);
        if !m.contains_key(key) {
            make_room(&mut m, |(_, end)| *end, now);
        }
        let entry = m.entry(key.to_owned()).or_insert((0, now + window));
        if entry.1 <= now {
            *entry = (0, now + window);
        }
        entry.0 += 1;
        (entry.0, entry.1.saturating_duration_since(now))
    }

    pub(super) fn count(&self, key: &str) -> u64 {
        let now = Instant::now();
        lock(&self.counters)
            .get(key)
            .filter(|(_, end)| *end > now)
            .map_or(0, |(n, _)| *n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_keys_stays_bounded_and_longer_windows_survive() {
        let m = Memory::default();
        m.hit("user:long", Duration::from_secs(3600));
        for i in 0..CAP + 10 {
            m.hit(&format!("ip:{i}"), Duration::from_nanos(1));
        }
        assert!(lock(&m.counters).len() <= CAP);
        assert_eq!(m.count("user:long"), 1, "the hour window was not wiped");
    }
}
