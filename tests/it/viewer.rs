//! The map viewer's files, served from the binary: the page and everything it loads, no key
//! needed for them (the page sends its user's key to the API), and none of it with `--no-ui`.

use crate::common::{TestServer, header};

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client")
}

/// The `src` and `href` attributes of a page's scripts and stylesheets.
fn assets(page: &str) -> Vec<String> {
    page.split(['"', '\''])
        .filter(|s| s.ends_with(".js") || s.ends_with(".css"))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn the_page_and_everything_it_loads_are_served_without_a_key() {
    let s = TestServer::start_with(|c| {
        let keys = c.data_dir.with_file_name("keys.txt");
        std::fs::create_dir_all(keys.parent().expect("a parent")).expect("dir");
        std::fs::write(&keys, "viewer-test-key-0123456789 read\n").expect("keys");
        c.keys = Some(keys);
    })
    .await;
    let root = no_redirects().get(s.url("/")).send().await.expect("sent");
    assert!(root.status().is_redirection(), "{}", root.status());
    assert_eq!(header(&root, "location"), Some("/ui/"));
    let page = s.client.get(s.url("/ui/")).send().await.expect("sent");
    assert_eq!(page.status(), 200);
    assert_eq!(header(&page, "content-type"), Some("text/html"));
    let etag = header(&page, "etag").expect("an etag").to_string();
    let html = page.text().await.expect("text");
    assert!(html.contains("<title>Proxima</title>"), "{html}");
    let assets = assets(&html);
    assert!(assets.len() >= 4, "{assets:?}");
    for asset in assets {
        let response = s
            .client
            .get(s.url(&format!("/ui/{asset}")))
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), 200, "{asset}");
        let kind = header(&response, "content-type").unwrap_or("").to_string();
        let expected = if asset.ends_with(".js") {
            "javascript"
        } else {
            "text/css"
        };
        assert!(kind.contains(expected), "{asset}: {kind}");
    }
    let outline = s
        .client
        .get(s.url("/ui/vendor/world-atlas-2.0.2/countries-110m.json"))
        .send()
        .await
        .expect("sent");
    assert_eq!(outline.status(), 200, "the offline world outline");
    // Unchanged files revalidate to a 304.
    let again = s
        .client
        .get(s.url("/ui/"))
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("sent");
    assert_eq!(again.status(), 304);
    // The API still needs the key.
    assert_eq!(s.get("/v1/pois/nearby?lat=1&lon=1").await.0, 401);
}

#[tokio::test]
async fn the_viewer_is_told_the_tile_server_and_nothing_outside_ui_is_served() {
    let s = TestServer::start_with(|c| {
        c.ui_tiles = "https://tiles.example.test/{z}/{x}/{y}.png".into();
        c.ui_tiles_attribution = "© Example".into();
    })
    .await;
    let (status, config) = s.get("/ui/config.json").await;
    assert_eq!(status, 200);
    assert_eq!(
        config["tiles"],
        "https://tiles.example.test/{z}/{x}/{y}.png"
    );
    assert_eq!(config["attribution"], "© Example");
    for path in ["/ui/..%2FCargo.toml", "/ui/nope.js", "/ui/vendor/"] {
        assert_eq!(s.get(path).await.0, 404, "{path}");
    }
}

#[tokio::test]
async fn no_ui_serves_no_viewer() {
    let s = TestServer::start_with(|c| c.no_ui = true).await;
    for path in ["/", "/ui/", "/ui/app.js", "/ui/config.json"] {
        assert_eq!(s.get(path).await.0, 404, "{path}");
    }
}

#[tokio::test]
async fn the_files_are_gzipped_for_clients_that_accept_it() {
    let s = TestServer::start().await;
    let raw = s
        .client
        .get(s.url("/ui/app.js"))
        .send()
        .await
        .expect("sent");
    assert_eq!(header(&raw, "content-encoding"), None);
    let etag = header(&raw, "etag").expect("an etag").to_string();
    let raw = raw.bytes().await.expect("body");
    let gzipped = s
        .client
        .get(s.url("/ui/app.js"))
        .header("accept-encoding", "br, gzip")
        .send()
        .await
        .expect("sent");
    assert_eq!(header(&gzipped, "content-encoding"), Some("gzip"));
    assert_eq!(header(&gzipped, "vary"), Some("accept-encoding"));
    assert_eq!(header(&gzipped, "etag"), Some(etag.as_str()));
    let gzipped = gzipped.bytes().await.expect("body");
    assert!(
        gzipped.len() * 2 < raw.len(),
        "{} vs {}",
        gzipped.len(),
        raw.len()
    );
    let mut unzipped = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(&gzipped[..]),
        &mut unzipped,
    )
    .expect("valid gzip");
    assert_eq!(unzipped, raw);
}
