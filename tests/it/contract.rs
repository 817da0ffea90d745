//! `/openapi.json` describes exactly the routes the server serves.

use serde_json::Value;

use crate::common::TestServer;

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

#[tokio::test]
async fn every_route_in_the_spec_is_served_and_no_other_method_is() {
    let s = TestServer::start().await;
    let (status, spec) = s.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert!(spec["openapi"].as_str().expect("version").starts_with("3."));
    let paths = spec["paths"].as_object().expect("paths");
    for expected in [
        "/v1/pois/{id}",
        "/v1/pois/nearby",
        "/v1/pois/within",
        "/v1/pois/import",
        "/healthz",
        "/readyz",
    ] {
        assert!(paths.contains_key(expected), "spec lists {expected}");
    }
    for (path, item) in paths {
        let concrete = path.replace("{id}", "some-id");
        for method in METHODS {
            let request = s.client.request(
                method.to_uppercase().parse().expect("method"),
                s.url(&concrete),
            );
            let (status, body) = s.send(request).await;
            if item.get(method).is_some() {
                assert_ne!(status, 405, "{method} {path} is in the spec but not served");
                assert!(
                    status != 404
                        || body["detail"]
                            .as_str()
                            .is_some_and(|d| !d.starts_with("no route")),
                    "{method} {path} is in the spec but not routed"
                );
                let documented: Vec<&String> = item[method]["responses"]
                    .as_object()
                    .expect("responses")
                    .keys()
                    .collect();
                assert!(
                    documented.iter().any(|code| **code == status.to_string()),
                    "{method} {path} answered {status}, documented {documented:?}"
                );
            } else {
                assert_eq!(status, 405, "{method} {path} is served but not in the spec");
            }
        }
    }
}

#[tokio::test]
async fn the_spec_references_only_schemas_it_defines() {
    let spec: Value = serde_json::from_str(proxima::server::OPENAPI_JSON).expect("spec is JSON");
    let text = proxima::server::OPENAPI_JSON;
    for piece in text.split("\"$ref\": \"#/components/").skip(1) {
        let reference = piece.split('"').next().expect("reference");
        let mut node = &spec["components"];
        for part in reference.split('/') {
            node = &node[part];
        }
        assert!(!node.is_null(), "dangling $ref {reference}");
    }
}
