//! Helpers of the device tests: signed lists, `auth_device` logins,
//! `send_copies` and the lists a `device_list_mismatch` carries.

use ed25519_dalek::SigningKey;
use hush_protocol::devices::{DeviceEntry, SignedDeviceList};
use hush_protocol::frame::{
    AuthOk, DeviceCopy, DeviceListPublished, Envelope, FetchDevices, PublishDeviceList, SendCopies,
};
use hush_protocol::{Body, ClientFrame, ErrorCode, PublicKeyBytes, ServerFrame, signing};

use super::{Client, connect_url, public, sign, user};

/// A list of `devices` (id, signing key) at `version`, signed by
/// `account` for `name`.
pub fn signed_list(
    account: &SigningKey,
    name: &str,
    version: u64,
    devices: &[(u32, &SigningKey)],
) -> SignedDeviceList {
    let devices: Vec<DeviceEntry> = devices
        .iter()
        .map(|(id, k)| DeviceEntry {
            id: *id,
            signing_key: public(k),
            identity_dh: PublicKeyBytes([u8::try_from(*id).unwrap_or(0); 32]),
        })
        .collect();
    let msg = signing::device_list_message(name, version, &devices).unwrap();
    SignedDeviceList {
        version,
        devices,
        signature: sign(account, &msg),
    }
}

pub async fn publish(c: &mut Client, list: SignedDeviceList) -> ServerFrame {
    let rid = c.rid();
    c.request(ClientFrame::PublishDeviceList(PublishDeviceList {
        rid,
        list,
    }))
    .await
}

pub async fn publish_ok(c: &mut Client, list: SignedDeviceList) {
    let version = list.version;
    match publish(c, list).await {
        ServerFrame::DeviceListPublished(DeviceListPublished { version: v, .. }) => {
            assert_eq!(v, version);
        }
        other => panic!("list not published: {other:?}"),
    }
}

pub async fn fetch_devices(c: &mut Client, name: &str) -> ServerFrame {
    let rid = c.rid();
    c.request(ClientFrame::FetchDevices(FetchDevices {
        rid,
        user_id: user(name),
    }))
    .await
}

/// Device `device` of `name`, authenticated with `auth_device`.
pub async fn device(
    relay: &hush_relay::RelayHandle,
    name: &str,
    device: u32,
    key: &SigningKey,
) -> (Client, AuthOk) {
    device_url(&relay.ws_url(), name, device, key).await
}

/// [`device`] by WebSocket URL.
pub async fn device_url(url: &str, name: &str, device: u32, key: &SigningKey) -> (Client, AuthOk) {
    let (ws, c) = connect_url(url).await;
    match Client::device_on(ws, c, name, device, key).await {
        (client, ServerFrame::AuthOk(ok)) => (client, ok),
        (_, other) => panic!("device {device} auth failed: {other:?}"),
    }
}

pub fn copies(list: &[(u32, &str)]) -> Vec<DeviceCopy> {
    list.iter()
        .map(|(device, body)| DeviceCopy {
            device: *device,
            body: Body(body.as_bytes().to_vec()),
        })
        .collect()
}

pub async fn send_copies(
    c: &mut Client,
    to: &str,
    to_devices: &[(u32, &str)],
    own: &[(u32, &str)],
) -> ServerFrame {
    let rid = c.rid();
    c.request(ClientFrame::SendCopies(SendCopies {
        rid,
        to: user(to),
        copies: copies(to_devices),
        self_copies: copies(own),
        ephemeral: false,
    }))
    .await
}

pub fn mismatch_lists(f: &ServerFrame) -> Vec<(String, Option<u64>)> {
    match f {
        ServerFrame::Error(e) if e.code == ErrorCode::DeviceListMismatch => e
            .lists
            .iter()
            .map(|a| (a.user_id.to_string(), a.list.as_ref().map(|l| l.version)))
            .collect(),
        other => panic!("expected device_list_mismatch, got {other:?}"),
    }
}

pub fn body(e: &Envelope) -> String {
    String::from_utf8(e.body.0.clone()).unwrap()
}
