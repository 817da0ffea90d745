//! `Idempotency-Key` on writes: a retry with the same key gets the first answer again and
//! applies nothing; the same key with another request is a 422; keys are each caller's own.

use serde_json::{Value, json};

use crate::common::{TestServer, header};

async fn send(request: reqwest::RequestBuilder) -> (u16, Value, Option<String>) {
    let response = request.send().await.expect("answered");
    let status = response.status().as_u16();
    let replayed = header(&response, "idempotent-replayed").map(String::from);
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body, replayed)
}

#[tokio::test]
async fn a_retried_write_gets_its_first_answer_and_is_applied_once() {
    let s = TestServer::start().await;
    let poi = json!({"lat": 60.1, "lon": 24.9, "name": "Café", "category": "cafe"});
    let put = || {
        s.client
            .put(s.url("/v1/pois/p"))
            .header("idempotency-key", "put-p-1")
            .json(&poi)
    };
    let (status, first, replayed) = send(put()).await;
    assert_eq!((status, replayed), (201, None));
    let (status, again, replayed) = send(put()).await;
    assert_eq!(
        (status, replayed.as_deref()),
        (201, Some("true")),
        "the first answer, not 200"
    );
    assert_eq!(first, again);
    // A delete retried: still the 204 it got, not a 404.
    let delete = || {
        s.client
            .delete(s.url("/v1/pois/p"))
            .header("idempotency-key", "delete-p-1")
    };
    assert_eq!(send(delete()).await.0, 204);
    assert_eq!(send(delete()).await.0, 204);
    assert_eq!(s.get("/v1/pois/p").await.0, 404);
    // A batch retried: the same counts, though every report is stale by now.
    let batch = || {
        s.client
            .post(s.url("/v1/positions"))
            .header("idempotency-key", "batch-1")
            .header("content-type", "application/x-ndjson")
            .body(format!(
                "{}\n",
                json!({"id": "t", "lat": 1, "lon": 1, "ts": s.now()})
            ))
    };
    let (_, counts, _) = send(batch()).await;
    assert_eq!(counts["accepted"], 1);
    let (_, counts, _) = send(batch()).await;
    assert_eq!(
        (counts["accepted"].clone(), counts["stale"].clone()),
        (json!(1), json!(0))
    );
    let (_, stats) = s.get("/v1/stats").await;
    assert_eq!(
        stats["wal"]["records"], 3,
        "put, delete, batch: each logged once"
    );
}

#[tokio::test]
async fn a_key_used_for_another_request_is_refused_and_keys_are_each_callers_own() {
    let s = TestServer::start_with(|c| {
        let keys = c.data_dir.with_file_name("keys.txt");
        std::fs::create_dir_all(keys.parent().expect("a parent")).expect("dir");
        std::fs::write(
            &keys,
            "one-key-0123456789 read,write\nother-key-0123456789 read,write\n",
        )
        .expect("keys");
        c.keys = Some(keys);
    })
    .await;
    let put = |key: &str, name: &str| {
        s.client
            .put(s.url("/v1/pois/p"))
            .bearer_auth(key)
            .header("idempotency-key", "k")
            .json(&json!({"lat": 60.1, "lon": 24.9, "name": name, "category": "cafe"}))
    };
    assert_eq!(send(put("one-key-0123456789", "A")).await.0, 201);
    let (status, problem, _) = send(put("one-key-0123456789", "B")).await;
    assert_eq!(status, 422, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("Idempotency-Key"))
    );
    // Another caller's `k` is another request: applied, answered on its own.
    let (status, body, replayed) = send(put("other-key-0123456789", "C")).await;
    assert_eq!((status, replayed), (200, None));
    assert_eq!(body["name"], "C");
    let (status, problem, _) = send(
        s.client
            .put(s.url("/v1/pois/q"))
            .bearer_auth("one-key-0123456789")
            .header("idempotency-key", "x".repeat(256))
            .json(&json!({"lat": 1, "lon": 1, "name": "q", "category": "cafe"})),
    )
    .await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(
        s.send(
            s.client
                .get(s.url("/v1/pois/q"))
                .bearer_auth("one-key-0123456789")
        )
        .await
        .0,
        404,
        "a refused key changed nothing"
    );
}

#[tokio::test]
async fn a_method_a_route_does_not_serve_is_a_405_whatever_key_it_carries() {
    let s = TestServer::start().await;
    let poi = json!({"lat": 60.1, "lon": 24.9, "name": "Café", "category": "cafe"});
    let put = s
        .client
        .put(s.url("/v1/pois/p"))
        .header("idempotency-key", "k-1")
        .json(&poi);
    assert_eq!(send(put).await.0, 201);
    // The same key on methods the route does not serve (one a write): 405, not the 422 of
    // a key reused for another request, and nothing kept under the key for them.
    for method in ["PATCH", "TRACE", "POST"] {
        let request = s
            .client
            .request(method.parse().expect("a method"), s.url("/v1/pois/p"))
            .header("idempotency-key", "k-1");
        assert_eq!(send(request).await.0, 405, "{method}");
    }
    let put = s
        .client
        .put(s.url("/v1/pois/p"))
        .header("idempotency-key", "k-1")
        .json(&poi);
    let (status, _, replayed) = send(put).await;
    assert_eq!((status, replayed.as_deref()), (201, Some("true")));
}
