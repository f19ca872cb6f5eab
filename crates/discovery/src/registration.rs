//! Keeping one instance registered for as long as it runs.

use std::time::Duration;

use tokio::{sync::oneshot, task::JoinHandle};

use crate::{DiscoveryError, HeartbeatOutcome, Instance, RegistryClient};

/// How often to retry before the registry has ever granted a lease (so the interval it wants
/// is unknown). Short, because until then nobody can find this instance.
const UNREGISTERED_RETRY: Duration = Duration::from_secs(1);

/// Floor on the heartbeat interval, whatever the registry says: a zero interval would spin.
const MIN_INTERVAL: Duration = Duration::from_millis(50);

/// How long [`Registration::stop`] tries to deregister: shutdown must not hang on the registry.
const DEREGISTER_TIMEOUT: Duration = Duration::from_secs(1);

/// Keeps an instance registered: heartbeats every lease heartbeat interval; when the registry
/// answers that it does not know the instance (lease expired, registry restarted) registers
/// again; on network errors keeps retrying at the same interval, logging once per outage.
///
/// Dropping it without [`Registration::stop`] stops the heartbeats without deregistering (the
/// lease then expires on its own).
#[derive(Debug)]
pub struct Registration {
    client: RegistryClient,
    instance: Instance,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Registration {
    /// Registers `instance` and starts heartbeating. The first attempt is awaited so that a
    /// healthy registry knows the instance when this returns; if it fails the error is logged
    /// and the background loop keeps trying.
    pub async fn start(client: RegistryClient, instance: Instance) -> Registration {
        let first = client.register(&instance).await;
        let state = match first {
            Ok(lease) => {
                tracing::info!(
                    service = %instance.service,
                    instance_id = %instance.instance_id,
                    http_addr = %instance.http_addr,
                    "Registered with the registry."
                );
                State {
                    registered: true,
                    interval: lease.heartbeat.max(MIN_INTERVAL),
                    outage: false,
                }
            }
            Err(err) => {
                tracing::warn!(
                    service = %instance.service,
                    instance_id = %instance.instance_id,
                    error = %err,
                    "Could not register with the registry; will keep trying."
                );
                State {
                    registered: false,
                    interval: UNREGISTERED_RETRY,
                    outage: true,
                }
            }
        };
        let (stop_tx, stop_rx) = oneshot::channel();
        let task = tokio::spawn(keep_registered(
            client.clone(),
            instance.clone(),
            state,
            stop_rx,
        ));
        Registration {
            client,
            instance,
            stop: Some(stop_tx),
            task: Some(task),
        }
    }

    /// The registered instance.
    pub fn instance(&self) -> &Instance {
        &self.instance
    }

    /// Stops heartbeating and deregisters (best effort, bounded to 1 s).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        let (service, id) = (&self.instance.service, &self.instance.instance_id);
        match tokio::time::timeout(DEREGISTER_TIMEOUT, self.client.deregister(service, id)).await {
            Ok(Ok(())) => {
                tracing::info!(service = %service, instance_id = %id, "Deregistered from the registry.")
            }
            Ok(Err(err)) => {
                tracing::warn!(service = %service, instance_id = %id, error = %err, "Could not deregister.");
            }
            Err(_) => {
                tracing::warn!(service = %service, instance_id = %id, "Deregistering timed out.")
            }
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

struct State {
    /// Whether the registry granted a lease at some point (so a heartbeat is the next step).
    registered: bool,
    interval: Duration,
    /// Whether the last attempt failed (so the failure has already been logged).
    outage: bool,
}

async fn keep_registered(
    client: RegistryClient,
    instance: Instance,
    mut state: State,
    mut stop: oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(state.interval) => {}
            _ = &mut stop => return,
        }
        // The attempt itself is raced against stop too: a hung registry must not delay shutdown.
        let attempt = tokio::select! {
            r = renew(&client, &instance, &mut state) => r,
            _ = &mut stop => return,
        };
        match attempt {
            Ok(()) => {
                if state.outage {
                    tracing::info!(service = %instance.service, instance_id = %instance.instance_id, "Registry reachable again.");
                }
                state.outage = false;
            }
            Err(err) => {
                if state.outage {
                    tracing::debug!(service = %instance.service, error = %err, "Registry still unavailable.");
                } else {
                    tracing::warn!(
                        service = %instance.service,
                        instance_id = %instance.instance_id,
                        error = %err,
                        "Lost contact with the registry; will keep trying."
                    );
                }
                state.outage = true;
            }
        }
    }
}

/// One heartbeat, or a registration when the registry does not (or no longer) know us.
async fn renew(
    client: &RegistryClient,
    instance: &Instance,
    state: &mut State,
) -> Result<(), DiscoveryError> {
    if state.registered {
        match client
            .heartbeat(&instance.service, &instance.instance_id)
            .await?
        {
            HeartbeatOutcome::Ok => return Ok(()),
            HeartbeatOutcome::Unknown => {
                tracing::info!(
                    service = %instance.service,
                    instance_id = %instance.instance_id,
                    "The registry forgot this instance; registering again."
                );
            }
        }
    }
    let lease = client.register(instance).await?;
    state.registered = true;
    state.interval = lease.heartbeat.max(MIN_INTERVAL);
    Ok(())
}
