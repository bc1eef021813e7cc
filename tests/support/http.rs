//! A real HTTP client (ureq) for the tests of the flow's endpoints.

/// Sends `method` to `url`: the status, the content type and the body. A
/// status of 4xx or 5xx is an answer, not an error.
pub(crate) fn request(method: &str, url: &str) -> (u16, String, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let response = match method {
        "GET" => agent.get(url).call(),
        "DELETE" => agent.delete(url).call(),
        other => panic!("no {other} here"),
    }
    .unwrap_or_else(|error| panic!("{url}: {error}"));
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = response.into_body().read_to_string().unwrap();
    (status, content_type, body)
}
