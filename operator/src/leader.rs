//! Leader election on a `coordination.k8s.io/v1` Lease, so that of several operator
//! replicas exactly one writes. The decision is pure ([`decide`]); [`Elector`] carries it
//! out with optimistic concurrency (every write names the `resourceVersion` it read, so
//! two candidates can never both win). A leader that cannot renew within the lease
//! duration stops: [`Elector::hold`] returns and the process exits, rather than risk two
//! writers.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::{PostParams, ResourceExt};

/// Leader election errors.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    /// Reading or writing the Lease failed.
    #[error("reading or writing Lease {namespace}/{name}: {source}")]
    Lease {
        /// Namespace of the Lease.
        namespace: String,
        /// Name of the Lease.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// The leader could not renew in time and gave up leadership.
    #[error("lost the leader lease {namespace}/{name}: not renewed within {seconds}s")]
    Lost {
        /// Namespace of the Lease.
        namespace: String,
        /// Name of the Lease.
        name: String,
        /// The lease duration.
        seconds: u64,
    },
}

/// How the lease is held.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease.
    pub name: String,
    /// This replica's identity (its pod name, or host and pid).
    pub identity: String,
    /// How long a lease lasts without renewal.
    pub duration: Duration,
    /// How often the leader renews (well within `duration`).
    pub renew_every: Duration,
}

/// What a candidate should do with the lease as it is now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Nobody holds it, or the holder let it expire: take it.
    Acquire,
    /// We hold it: renew it.
    Renew,
    /// Someone else holds a live lease.
    Wait {
        /// The current holder.
        holder: String,
    },
}

/// Decides what to do with `lease` at `now`.
pub fn decide(lease: Option<&LeaseSpec>, identity: &str, now: Timestamp) -> Decision {
    let Some(spec) = lease else {
        return Decision::Acquire;
    };
    let holder = match spec.holder_identity.as_deref() {
        None | Some("") => return Decision::Acquire,
        Some(h) => h,
    };
    if holder == identity {
        return Decision::Renew;
    }
    let renewed = spec
        .renew_time
        .as_ref()
        .or(spec.acquire_time.as_ref())
        .map(|t| t.0);
    let duration = SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(0)));
    match renewed.and_then(|r| r.checked_add(duration).ok()) {
        Some(expiry) if expiry > now => Decision::Wait {
            holder: holder.to_owned(),
        },
        _ => Decision::Acquire,
    }
}

/// Takes and keeps the lease.
pub struct Elector {
    api: Api<Lease>,
    cfg: LeaseConfig,
}

impl Elector {
    /// An elector for the lease `cfg` names.
    pub fn new(client: kube::Client, cfg: LeaseConfig) -> Self {
        Self {
            api: Api::namespaced(client, &cfg.namespace),
            cfg,
        }
    }

    fn error(&self, source: kube::Error) -> LeaderError {
        LeaderError::Lease {
            namespace: self.cfg.namespace.clone(),
            name: self.cfg.name.clone(),
            source,
        }
    }

    /// One attempt to take or renew the lease. `Ok(true)` when we hold it afterwards.
    pub async fn try_once(&self) -> Result<bool, LeaderError> {
        let now = Timestamp::now();
        let current = self
            .api
            .get_opt(&self.cfg.name)
            .await
            .map_err(|e| self.error(e))?;
        let decision = decide(
            current.as_ref().and_then(|l| l.spec.as_ref()),
            &self.cfg.identity,
            now,
        );
        let seconds = i32::try_from(self.cfg.duration.as_secs()).unwrap_or(i32::MAX);
        let spec = |old: Option<&LeaseSpec>, renew_only: bool| {
            let old = old.cloned().unwrap_or_default();
            LeaseSpec {
                holder_identity: Some(self.cfg.identity.clone()),
                lease_duration_seconds: Some(seconds),
                acquire_time: if renew_only {
                    old.acquire_time
                } else {
                    Some(MicroTime(now))
                },
                renew_time: Some(MicroTime(now)),
                lease_transitions: Some(
                    old.lease_transitions.unwrap_or(0) + i32::from(!renew_only),
                ),
                ..old
            }
        };
        let write = match (decision, current) {
            (Decision::Wait { .. }, _) => return Ok(false),
            (_, None) => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.cfg.name.clone()),
                        namespace: Some(self.cfg.namespace.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(spec(None, false)),
                };
                self.api.create(&PostParams::default(), &lease).await
            }
            (decision, Some(mut lease)) => {
                let renew_only = decision == Decision::Renew;
                lease.spec = Some(spec(lease.spec.as_ref(), renew_only));
                // `replace` carries the resourceVersion we read: if anyone wrote in
                // between, the API server answers 409 and we did not win.
                self.api
                    .replace(&lease.name_any(), &PostParams::default(), &lease)
                    .await
            }
        };
        match write {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(self.error(e)),
        }
    }

    /// Waits until this replica holds the lease.
    pub async fn acquire(&self) -> Result<(), LeaderError> {
        loop {
            match self.try_once().await {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "leader election attempt failed; retrying"),
            }
            tokio::time::sleep(self.cfg.renew_every).await;
        }
    }

    /// Renews the lease until a renewal fails for longer than the lease lasts; then
    /// returns [`LeaderError::Lost`]. It never returns while the lease is held.
    pub async fn hold(&self) -> LeaderError {
        let mut last_renewal = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(self.cfg.renew_every).await;
            // A hung request must not outlive the lease: each attempt gets until the
            // next one is due.
            match tokio::time::timeout(self.cfg.renew_every, self.try_once()).await {
                Ok(Ok(true)) => last_renewal = tokio::time::Instant::now(),
                Ok(Ok(false)) => tracing::warn!("another replica took the leader lease"),
                Ok(Err(e)) => tracing::warn!(error = %e, "renewing the leader lease failed"),
                Err(_) => tracing::warn!(
                    seconds = self.cfg.renew_every.as_secs(),
                    "renewing the leader lease timed out"
                ),
            }
            // Give up a little before the lease could expire, so that by the time another
            // replica may take it we have stopped writing.
            if last_renewal.elapsed() + self.cfg.renew_every >= self.cfg.duration {
                return LeaderError::Lost {
                    namespace: self.cfg.namespace.clone(),
                    name: self.cfg.name.clone(),
                    seconds: self.cfg.duration.as_secs(),
                };
            }
        }
    }

    /// Gives the lease up on shutdown so another replica takes over at once.
    pub async fn release(&self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.cfg.name).await else {
            return;
        };
        let ours = lease
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.as_deref())
            == Some(self.cfg.identity.as_str());
        if !ours {
            return;
        }
        if let Some(spec) = lease.spec.as_mut() {
            spec.holder_identity = None;
        }
        if let Err(e) = self
            .api
            .replace(&lease.name_any(), &PostParams::default(), &lease)
            .await
        {
            tracing::warn!(error = %e, "releasing the leader lease failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(holder: &str, renewed_secs: i64, duration: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.to_owned()),
            renew_time: Some(MicroTime(Timestamp::from_second(renewed_secs).unwrap())),
            lease_duration_seconds: Some(duration),
            ..LeaseSpec::default()
        }
    }

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    #[test]
    fn free_lease_is_taken() {
        assert_eq!(decide(None, "a", at(100)), Decision::Acquire);
        assert_eq!(
            decide(Some(&LeaseSpec::default()), "a", at(100)),
            Decision::Acquire
        );
    }

    #[test]
    fn own_lease_is_renewed() {
        assert_eq!(
            decide(Some(&spec("a", 90, 15)), "a", at(100)),
            Decision::Renew
        );
    }

    #[test]
    fn live_lease_of_another_is_respected() {
        assert_eq!(
            decide(Some(&spec("b", 90, 15)), "a", at(100)),
            Decision::Wait {
                holder: "b".to_owned()
            }
        );
    }

    #[test]
    fn expired_lease_of_another_is_taken() {
        assert_eq!(
            decide(Some(&spec("b", 80, 15)), "a", at(100)),
            Decision::Acquire
        );
    }
}
