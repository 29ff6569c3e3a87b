//! The device requests (protocol section 16): `auth_device` (a device
//! authenticating with its own key), `publish_device_list`,
//! `fetch_devices` and `fetch_device_bundle`.
//!
//! An account without a published list has one device, id 1, whose
//! signing key is the account key ([`current_devices`]). Publishing a list
//! registers each new device N ≥ 2 under its address (`user/N`) with its
//! signing key, empties the mailbox of every removed device, pushes the
//! list to every device of the old and the new list, and so closes each
//! removed device's connection with 4005 wherever it is.

use ed25519_dalek::{Signature, VerifyingKey};
use hush_protocol::devices::{DeviceEntry, SignedDeviceList, check_shape};
use hush_protocol::frame::{
    AccountDevices, AuthDevice, Bundle, DeviceListPublished, DeviceListPush, Devices,
    FetchDeviceBundle, FetchDevices, PrekeysLow, PublishDeviceList,
};
use hush_protocol::{ErrorCode, PublicKeyBytes, ServerFrame, UserId, close, signing};

use super::auth::Live;
use super::{Conn, Flow};
use crate::store::{AuthOutcome, DeviceListOutcome, Store, StoreError};

/// `(id, signing key)` of every current device of an account: its list's,
/// or device 1 with the account key for a legacy account (`None` when the
/// account is unknown).
pub(super) async fn current_devices<S: Store>(
    dir: &crate::directory::Directory<S>,
    user: &UserId,
) -> Result<Option<(Option<SignedDeviceList>, Vec<(u32, PublicKeyBytes)>)>, StoreError> {
    match dir.device_list(user).await? {
        Some(list) => {
            let ids = list.devices.iter().map(|d| (d.id, d.signing_key)).collect();
            Ok(Some((Some(list), ids)))
        }
        None => Ok(dir.identity_key(user).await?.map(|k| (None, vec![(1, k)]))),
    }
}

/// The checks of a list before it is stored: shape, the account key's
/// signature, and the publishing device staying in it with its key.
async fn check_list<S: Store>(
    dir: &crate::directory::Directory<S>,
    account: &UserId,
    list: &SignedDeviceList,
    device: u32,
    device_key: [u8; 32],
) -> Result<(), String> {
    check_shape(&list.devices).map_err(|e| e.to_string())?;
    let account_key = match dir.identity_key(account).await {
        Ok(Some(k)) => k,
        _ => return Err("the account key is unavailable".to_owned()),
    };
    let msg = signing::device_list_message(account.as_str(), list.version, &list.devices)
        .map_err(|e| e.to_string())?;
    let signed = VerifyingKey::from_bytes(&account_key.0)
        .ok()
        .is_some_and(|k| {
            k.verify_strict(&msg, &Signature::from_bytes(&list.signature.0))
                .is_ok()
        });
    if !signed {
        return Err("the signature does not verify with the account key".to_owned());
    }
    let stays = list
        .devices
        .iter()
        .any(|d: &DeviceEntry| d.id == device && d.signing_key.0 == device_key);
    // Device 1 of a legacy account authenticated with the account key.
    let stays = stays || (device == 1 && list.devices.iter().any(|d| d.id == 1));
    if !stays {
        return Err(format!(
            "the publishing device {device} must stay in the list with its key; another device removes it"
        ));
    }
    Ok(())
}

/// The `error` frame carrying accounts' current lists.
pub(super) fn error_with_lists(
    rid: u64,
    code: ErrorCode,
    message: String,
    lists: Vec<AccountDevices>,
) -> ServerFrame {
    match ServerFrame::error(Some(rid), code, message) {
        ServerFrame::Error(mut e) => {
            e.lists = lists;
            ServerFrame::Error(e)
        }
        other => other,
    }
}

impl<S: Store> Conn<S> {
    pub(super) async fn authenticate_device(&mut self, a: AuthDevice) -> Flow {
        let rid = Some(a.rid);
        let message = signing::auth_message_v2(
            self.hub.relay_id(),
            &self.challenge,
            a.user_id.as_str(),
            a.device,
        )
        .ok();
        let verified = super::auth::signed_by(&a.device_key.0, message, &a.signature.0);
        let Some(key) = verified else {
            tracing::info!(conn = self.conn_id, user = %a.user_id, "device auth signature rejected");
            return self
                .refuse_auth(rid, ErrorCode::AuthFailed, "bad signature")
                .await;
        };
        let devices = match current_devices(self.hub.directory(), &a.user_id).await {
            Ok(Some((_, devices))) => devices,
            Ok(None) => {
                return self
                    .refuse_auth(
                        rid,
                        ErrorCode::UnknownUser,
                        "no such account (auth_device never registers)",
                    )
                    .await;
            }
            Err(e) => return self.auth_store_failed(rid, &e).await,
        };
        let Some(&(_, listed)) = devices.iter().find(|(id, _)| *id == a.device) else {
            tracing::info!(conn = self.conn_id, user = %a.user_id, device = a.device, "auth of a device not in the list");
            return self
                .refuse_auth(
                    rid,
                    ErrorCode::UnknownDevice,
                    "device not in this account's device list",
                )
                .await;
        };
        if listed != a.device_key {
            return self
                .refuse_auth(
                    rid,
                    ErrorCode::DeviceKeyMismatch,
                    "not the device's listed signing key",
                )
                .await;
        }
        // Device 1's record is the account's own, registered to the account
        // key; a device N ≥ 2 is registered to its signing key.
        let record_key = if a.device == 1 {
            match self.hub.directory().identity_key(&a.user_id).await {
                Ok(Some(k)) => k,
                Ok(None) => return Flow::Break(()),
                Err(e) => return self.auth_store_failed(rid, &e).await,
            }
        } else {
            a.device_key
        };
        let address = a.user_id.device_address(a.device);
        let outcome = self
            .hub
            .directory()
            .register_or_authenticate(&address, &record_key)
            .await;
        let (one_time_prekeys, has_keys, last_queued) = match outcome {
            Ok(AuthOutcome::Ok {
                one_time_prekeys,
                has_keys,
                last_queued,
                ..
            }) => (one_time_prekeys, has_keys, last_queued),
            Ok(AuthOutcome::KeyMismatch) => {
                return self
                    .refuse_auth(
                        rid,
                        ErrorCode::DeviceKeyMismatch,
                        "device record holds another key",
                    )
                    .await;
            }
            Err(e) => return self.auth_store_failed(rid, &e).await,
        };
        let (account, device) = (a.user_id.clone(), a.device);
        let live = Live {
            rid: a.rid,
            account: a.user_id,
            device: a.device,
            key,
            by_device_key: true,
            registered: false,
            one_time_prekeys,
            has_keys,
            last_queued,
        };
        self.go_live(live).await?;
        // A list that removed this device between the check above and the
        // session going live was pushed to no session of it: check again.
        let still = match current_devices(self.hub.directory(), &account).await {
            Ok(Some((_, devices))) => devices
                .iter()
                .any(|(id, k)| *id == device && *k == a.device_key),
            Ok(None) => false,
            Err(_) => true,
        };
        if !still && let Some(authed) = &self.authed {
            authed
                .session
                .close_after_queued(close::DEVICE_REMOVED, "device removed");
        }
        Flow::Continue(())
    }

    pub(super) async fn publish_device_list(&mut self, p: PublishDeviceList) -> Flow {
        let Some((account, device, key)) = self
            .authed
            .as_ref()
            .map(|a| (a.account.clone(), a.device, a.key.to_bytes()))
        else {
            return Flow::Break(());
        };
        let dir = self.hub.directory().clone();
        let (old_list, old) = match current_devices(&dir, &account).await {
            Ok(Some(v)) => v,
            Ok(None) => {
                return self
                    .error(Some(p.rid), ErrorCode::UnknownUser, "account gone")
                    .await;
            }
            Err(e) => return self.store_error(p.rid, e).await,
        };
        let list = p.list;
        if let Err(why) = check_list(&dir, &account, &list, device, key).await {
            return self.error(Some(p.rid), ErrorCode::BadDeviceList, why).await;
        }
        let stale = |current: Option<SignedDeviceList>| {
            error_with_lists(
                p.rid,
                ErrorCode::StaleDeviceList,
                format!("version {} is not above the current list's", list.version),
                vec![AccountDevices {
                    user_id: account.clone(),
                    list: current,
                }],
            )
        };
        if list.version == 0 {
            return self.send(&stale(old_list)).await;
        }
        // New devices are registered before the list names them, so a
        // send to them never finds no mailbox.
        for d in &list.devices {
            let known = old.iter().any(|(id, k)| *id == d.id && *k == d.signing_key);
            if d.id != 1 && !known {
                let address = account.device_address(d.id);
                if let Err(e) = dir.register_device(&address, &d.signing_key).await {
                    return self.store_error(p.rid, e).await;
                }
            }
        }
        match dir.put_device_list(&account, list.clone()).await {
            Ok(DeviceListOutcome::Stored) => {}
            Ok(DeviceListOutcome::Stale(current)) => return self.send(&stale(Some(current))).await,
            Err(e) => return self.store_error(p.rid, e).await,
        }
        tracing::info!(user = %account, version = list.version, devices = list.devices.len(), "device list published");
        let removed: Vec<u32> = old
            .iter()
            .map(|(id, _)| *id)
            .filter(|id| !list.devices.iter().any(|d| d.id == *id))
            .collect();
        for id in &removed {
            if let Err(e) = dir.purge_mailbox(&account.device_address(*id)).await {
                tracing::error!(error = %e, user = %account, device = id, "purging a removed device's mailbox failed");
            }
        }
        let frame = ServerFrame::DeviceList(DeviceListPush {
            user_id: account.clone(),
            list: list.clone(),
        })
        .encode();
        let targets = list.devices.iter().map(|d| d.id).chain(removed);
        for id in targets {
            self.hub
                .push_device_list(&account.device_address(id), frame.clone());
        }
        self.send(&ServerFrame::DeviceListPublished(DeviceListPublished {
            rid: p.rid,
            version: list.version,
        }))
        .await
    }

    pub(super) async fn fetch_devices(&mut self, f: FetchDevices) -> Flow {
        match current_devices(self.hub.directory(), &f.user_id).await {
            Ok(Some((list, _))) => {
                self.send(&ServerFrame::Devices(Devices {
                    rid: f.rid,
                    account: AccountDevices {
                        user_id: f.user_id,
                        list,
                    },
                }))
                .await
            }
            Ok(None) => {
                self.error(Some(f.rid), ErrorCode::UnknownUser, "no such user")
                    .await
            }
            Err(e) => self.store_error(f.rid, e).await,
        }
    }

    pub(super) async fn fetch_device_bundle(&mut self, f: FetchDeviceBundle) -> Flow {
        if !self.take_fetch_quota() {
            return self.fetch_quota_exhausted(f.rid).await;
        }
        let listed = match current_devices(self.hub.directory(), &f.user_id).await {
            Ok(Some((_, devices))) => devices.iter().find(|(id, _)| *id == f.device).map(|d| d.1),
            Ok(None) => None,
            Err(e) => return self.store_error(f.rid, e).await,
        };
        let Some(device_key) = listed else {
            return self
                .error(
                    Some(f.rid),
                    ErrorCode::UnknownDevice,
                    "no such user or device",
                )
                .await;
        };
        let address = f.user_id.device_address(f.device);
        let fetched = match self.hub.directory().fetch_bundle(&address).await {
            Ok(Some(b)) => b,
            Ok(None) => {
                return self
                    .error(
                        Some(f.rid),
                        ErrorCode::UnknownUser,
                        "the device published no keys",
                    )
                    .await;
            }
            Err(e) => return self.store_error(f.rid, e).await,
        };
        if fetched.one_time_prekey.is_some()
            && fetched.remaining < self.hub.limits().prekey_low_threshold
        {
            self.hub.delivery().push_to(
                &address,
                ServerFrame::PrekeysLow(PrekeysLow {
                    one_time_prekeys: fetched.remaining,
                })
                .encode(),
            );
        }
        self.send(&ServerFrame::Bundle(Box::new(Bundle {
            rid: f.rid,
            user_id: f.user_id,
            // The device's listed signing key, which signed its keys (for
            // device 1 of a legacy account, the account key).
            identity_key: device_key,
            identity_dh: fetched.keys.identity_dh,
            identity_dh_sig: fetched.keys.identity_dh_sig,
            signed_prekey: fetched.keys.signed_prekey,
            one_time_prekey: fetched.one_time_prekey,
        })))
        .await
    }
}
