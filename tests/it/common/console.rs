//! A browser signed in to the admin console, and its page loads and form posts.

use latchkey::domain::users::Role;
use reqwest::StatusCode;

use super::TestServer;

/// Makes the admin `root` and signs a fresh browser in as them.
pub async fn signed_in_admin(server: &TestServer) -> reqwest::Client {
    server
        .create_user("root", "admin-password-1", Role::Admin)
        .await;
    let browser = server.browser();
    let response = server.sign_in(&browser, "root", "admin-password-1").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    browser
}

pub async fn page(browser: &reqwest::Client, url: String) -> (StatusCode, String) {
    let response = browser.get(url).send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

pub async fn post(
    browser: &reqwest::Client,
    url: String,
    form: &[(&str, &str)],
) -> (StatusCode, String) {
    let response = browser.post(url).form(form).send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}
