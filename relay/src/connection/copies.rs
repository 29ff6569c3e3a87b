//! `send_copies`: one message as one ciphertext per device of the
//! recipient and per other device of the sender. The devices named must be
//! exactly the current ones (else `device_list_mismatch` with both lists);
//! then every copy is submitted at once to its device's mailbox, and
//! `copies_accepted` goes out once all of them are durable. An ephemeral
//! `send_copies` is pushed to the online devices and never stored.
//!
//! Legacy `send` to an account whose list names more than device 1 is
//! refused the same way ([`Conn::legacy_send_refused`]).

use std::collections::BTreeSet;

use futures_util::future::join_all;
use hush_protocol::frame::{AccountDevices, CopiesAccepted, CopyId, DeviceCopy, SendCopies};
use hush_protocol::{ErrorCode, ServerFrame, UserId};

use super::devices::{current_devices, error_with_lists};
use super::reply::Done;
use super::{Conn, Flow};
use crate::directory::Directory;
use crate::store::{AppendOutcome, Store, StoreError};
use crate::wire;

/// The device ids of `copies`, `None` if one is named twice.
fn device_set(copies: &[DeviceCopy]) -> Option<BTreeSet<u32>> {
    let mut set = BTreeSet::new();
    copies.iter().all(|c| set.insert(c.device)).then_some(set)
}

/// Accounts' current lists for a `device_list_mismatch`.
async fn lists_of<S: Store>(
    dir: &Directory<S>,
    users: &[&UserId],
) -> Result<Vec<AccountDevices>, StoreError> {
    let mut out = Vec::with_capacity(users.len());
    for u in users {
        out.push(AccountDevices {
            user_id: (*u).clone(),
            list: dir.device_list(u).await?,
        });
    }
    Ok(out)
}

impl<S: Store> Conn<S> {
    /// `Some(flow)` when a legacy `send` to `to` must be refused: its
    /// account lists devices other than device 1.
    pub(super) async fn legacy_send_refused(&mut self, rid: u64, to: &UserId) -> Option<Flow> {
        let multi = match self.hub.directory().device_list(to).await {
            Ok(list) => list.is_some_and(|l| l.devices.iter().any(|d| d.id != 1)),
            Err(e) => return Some(self.store_error(rid, e).await),
        };
        if !multi {
            return None;
        }
        let dir = self.hub.directory().clone();
        let lists = match lists_of(&dir, &[to]).await {
            Ok(l) => l,
            Err(e) => return Some(self.store_error(rid, e).await),
        };
        let msg = "the recipient has several devices: use send_copies".to_owned();
        let frame = error_with_lists(rid, ErrorCode::DeviceListMismatch, msg, lists);
        Some(self.send(&frame).await)
    }

    pub(super) async fn send_copies(&mut self, s: SendCopies) -> Flow {
        if s.ephemeral
            && let Some(flow) = self.presence_limited(s.rid).await
        {
            return flow;
        }
        let Some((from, account, device)) = self
            .authed
            .as_ref()
            .map(|a| (a.user.clone(), a.account.clone(), a.device))
        else {
            return Flow::Break(());
        };
        let max = self.hub.limits().max_envelope_bytes;
        if let Some(c) = s
            .copies
            .iter()
            .chain(&s.self_copies)
            .find(|c| c.body.len() > max)
        {
            let msg = format!("a body is {} bytes; at most {max}", c.body.len());
            return self
                .error(Some(s.rid), ErrorCode::EnvelopeTooLarge, msg)
                .await;
        }
        let dir = self.hub.directory().clone();
        let theirs = match current_devices(&dir, &s.to).await {
            Ok(Some((_, d))) => d.into_iter().map(|(id, _)| id).collect::<BTreeSet<_>>(),
            Ok(None) => {
                return self
                    .error(Some(s.rid), ErrorCode::UnknownUser, "no such recipient")
                    .await;
            }
            Err(e) => return self.store_error(s.rid, e).await,
        };
        let mine = match current_devices(&dir, &account).await {
            Ok(Some((_, d))) => d.into_iter().map(|(id, _)| id).collect::<BTreeSet<_>>(),
            Ok(None) => return Flow::Break(()),
            Err(e) => return self.store_error(s.rid, e).await,
        };
        let to_self = s.to == account;
        let (want_copies, want_self) = if to_self {
            (&theirs - &BTreeSet::from([device]), BTreeSet::new())
        } else {
            (theirs, &mine - &BTreeSet::from([device]))
        };
        let named = (device_set(&s.copies), device_set(&s.self_copies));
        if named != (Some(want_copies), Some(want_self)) {
            let users: Vec<&UserId> = if to_self {
                vec![&account]
            } else {
                vec![&s.to, &account]
            };
            let lists = match lists_of(&dir, &users).await {
                Ok(l) => l,
                Err(e) => return self.store_error(s.rid, e).await,
            };
            let msg = "the devices named differ from the current device lists".to_owned();
            let frame = error_with_lists(s.rid, ErrorCode::DeviceListMismatch, msg, lists);
            return self.send(&frame).await;
        }
        if s.ephemeral {
            let now = self.hub.delivery().now_ms();
            let copies = s.copies.iter().map(|c| (&s.to, c));
            for (to, c) in copies.chain(s.self_copies.iter().map(|c| (&account, c))) {
                let frame = wire::ephemeral_envelope(from.as_str(), now, c.body.as_bytes());
                self.hub
                    .delivery()
                    .push_to(&to.device_address(c.device), frame);
            }
            return self
                .send(&ServerFrame::CopiesAccepted(CopiesAccepted {
                    rid: s.rid,
                    copies: Vec::new(),
                    self_copies: Vec::new(),
                }))
                .await;
        }
        self.submit_copies(s, from, account)
    }

    /// Submits every copy now (see `Store::append`) and queues the reply
    /// behind their commits.
    fn submit_copies(&mut self, s: SendCopies, from: UserId, account: UserId) -> Flow {
        let rid = s.rid;
        let mut copies = s.copies;
        let mut self_copies = s.self_copies;
        copies.sort_by_key(|c| c.device);
        self_copies.sort_by_key(|c| c.device);
        let n_copies = copies.len();
        let bytes: usize = copies
            .iter()
            .chain(&self_copies)
            .map(|c| c.body.len())
            .sum();
        let mut targets = Vec::with_capacity(n_copies + self_copies.len());
        let mut commits = Vec::with_capacity(targets.capacity());
        let all = copies
            .into_iter()
            .map(|c| (&s.to, c))
            .chain(self_copies.into_iter().map(|c| (&account, c)));
        for (user, c) in all {
            let address = user.device_address(c.device);
            commits.push(self.hub.delivery().submit(&from, &address, c.body));
            targets.push((c.device, address));
        }
        self.in_flight_bytes += bytes;
        self.pending.push_back(Box::pin(async move {
            let outcomes = join_all(commits).await;
            let mut ids = Vec::with_capacity(outcomes.len());
            let mut deliver = Vec::with_capacity(outcomes.len());
            let mut failure = None;
            for ((device, address), outcome) in targets.into_iter().zip(outcomes) {
                match outcome {
                    Ok(AppendOutcome::Appended(env)) => {
                        ids.push(CopyId { device, id: env.id });
                        deliver.push((address, env));
                    }
                    Ok(AppendOutcome::MailboxFull) => {
                        failure
                            .get_or_insert((ErrorCode::MailboxFull, "a device's mailbox is full"));
                    }
                    Ok(AppendOutcome::UnknownUser) => {
                        failure
                            .get_or_insert((ErrorCode::UnknownDevice, "a device has no mailbox"));
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "store failed");
                        failure.get_or_insert((
                            ErrorCode::StoreUnavailable,
                            "store unavailable; retry later",
                        ));
                    }
                }
            }
            let frame = match failure {
                Some((code, message)) => ServerFrame::error(Some(rid), code, message),
                None => {
                    let self_ids = ids.split_off(n_copies);
                    ServerFrame::CopiesAccepted(CopiesAccepted {
                        rid,
                        copies: ids,
                        self_copies: self_ids,
                    })
                }
            };
            Done {
                frame,
                deliver,
                bytes,
            }
        }));
        Flow::Continue(())
    }
}
