//! The viewer's devices and privacy zones panel in a real browser: a device made (its token
//! shown once, with a QR code holding the app's setup link), listed and revoked; a privacy
//! zone put by clicking its centre and drawn on the map, then deleted.

use serde_json::json;

use super::Browser;
use crate::common::TestServer;

#[tokio::test]
async fn a_traveller_makes_and_revokes_a_device_and_draws_a_privacy_zone() {
    let Some(browser) =
        Browser::start("a_traveller_makes_and_revokes_a_device_and_draws_a_privacy_zone").await
    else {
        return;
    };
    let s = TestServer::start().await;
    browser.open_viewer(&s).await;
    browser
        .run(
            "document.getElementById('device-traveller').value = 'ann';
             document.getElementById('device-name').value = 'my phone';
             document.getElementById('device-new').click();",
            json!([]),
        )
        .await;
    let shown = browser
        .wait_for(
            "the new device's token and QR code",
            "const box = document.getElementById('device-token');
             const token = box.querySelector('code');
             return !box.hidden && token && box.querySelector('.qr svg')
               ? token.textContent : null;",
            json!([]),
        )
        .await;
    let token = shown.as_str().expect("a token");
    assert!(token.starts_with("pxd_"), "{token}");
    let (status, listed) = s.get("/v1/travellers/ann/devices").await;
    assert_eq!(status, 200);
    assert_eq!(listed["results"][0]["name"], "my phone");
    assert!(!listed.to_string().contains(token), "never listed again");
    browser
        .run(
            "document.getElementById('device-token').scrollIntoView();",
            json!([]),
        )
        .await;
    browser.screenshot("device-made").await;
    // The token works, and revoking it in the page stops it.
    let report = json!({"_type": "location", "lat": 60.17, "lon": 24.94, "tst": s.now() / 1000});
    let ingest = |t: &str| {
        s.client
            .post(s.url("/v1/ingest/owntracks"))
            .basic_auth("ann", Some(t))
            .json(&report)
    };
    assert_eq!(s.send(ingest(token)).await.0, 200);
    browser
        .run(
            "document.querySelector('#devices li button').click();",
            json!([]),
        )
        .await;
    browser
        .wait_for(
            "the device to be gone",
            "return document.querySelectorAll('#devices li').length === 0;",
            json!([]),
        )
        .await;
    assert_eq!(s.send(ingest(token)).await.0, 401);
    // A zone: its centre clicked on the map.
    browser
        .run(
            "document.getElementById('zone-id').value = 'home';
             document.getElementById('zone-radius').value = '300';
             document.getElementById('zone-circle').click();
             window.proxima.map.fire('click', {latlng: L.latLng(arguments[0], arguments[1])});",
            json!([60.1699, 24.9384]),
        )
        .await;
    browser
        .wait_for(
            "the zone listed and drawn",
            "return document.querySelector('#zones li[data-id=\"home\"]')
               && window.proxima.zoneLayer.getLayers().length === 1;",
            json!([]),
        )
        .await;
    let (status, zone) = s.get("/v1/travellers/ann/privacy-zones/home").await;
    assert_eq!(status, 200, "{zone}");
    assert_eq!(zone["area"]["radius_m"], 300.0);
    let centre = &zone["area"]["center"];
    assert!(
        (centre[1].as_f64().expect("lat") - 60.1699).abs() < 1e-9,
        "{zone}"
    );
    browser.screenshot("zone-drawn").await;
    browser
        .run(
            "document.querySelector('#zones li button').click();",
            json!([]),
        )
        .await;
    browser
        .wait_for(
            "the zone to be gone",
            "return window.proxima.zoneLayer.getLayers().length === 0;",
            json!([]),
        )
        .await;
    assert_eq!(s.get("/v1/travellers/ann/privacy-zones/home").await.0, 404);
    assert!(browser.console_errors().await.is_empty());
}
