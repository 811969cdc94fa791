//! The admin console at /admin: who may see it, CSRF on its forms, and what its pages do.

use reqwest::StatusCode;

use latchkey::domain::users::{AccountStatus, Role};

use crate::common::console::{page, signed_in_admin};
use crate::common::{TestServer, csrf_token};

/// Every console page and form, with its method: a non-admin is refused each one.
const PATHS: &[(&str, &str)] = &[
    ("GET", "/admin"),
    ("GET", "/admin/users"),
    ("GET", "/admin/users?q=a&status=active&role=admin"),
    ("GET", "/admin/users/{user}"),
    ("POST", "/admin/users/{user}/action"),
    ("POST", "/admin/users/{user}/sessions/end"),
    ("POST", "/admin/users/{user}/sessions/end-all"),
    ("GET", "/admin/clients"),
    ("POST", "/admin/clients"),
    ("GET", "/admin/clients/x"),
    ("POST", "/admin/clients/x/rotate"),
    ("POST", "/admin/clients/x/delete"),
    ("GET", "/admin/audit"),
    ("GET", "/admin/audit.csv"),
];

#[tokio::test]
async fn only_admins_get_the_console() {
    let server = TestServer::start().await;
    let target = server
        .create_user("target", "password-123", Role::Explorer)
        .await;
    server
        .create_user("eve", "password-123", Role::Enterprise)
        .await;
    let member = server.browser();
    server.sign_in(&member, "eve", "password-123").await;
    // A token valid for this browser, so the refusal is the role's, not the form's.
    let (_, html) = page(&member, server.url("/account")).await;
    let csrf = csrf_token(&html);
    let anonymous = server.browser();
    for (method, path) in PATHS {
        let url = server.url(&path.replace("{user}", &target.id));
        let send = |client: &reqwest::Client| match *method {
            "GET" => client.get(&url),
            _ => client.post(&url).form(&[
                ("csrf_token", csrf.as_str()),
                ("action", "suspend"),
                ("name", "x"),
            ]),
        };
        let response = send(&member).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{method} {path}");
        let response = send(&anonymous).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{method} {path}");
        let location = response.headers()["location"].to_str().unwrap();
        assert!(location.starts_with("/login?next=/admin"), "{location}");
    }
    // Nothing happened to the target.
    let user = server
        .state
        .store
        .find_user(&target.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.status, AccountStatus::Active);
    // The way back is kept, query and all.
    let response = anonymous
        .get(server.url("/admin/users?q=bob"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["location"],
        "/login?next=/admin/users%3Fq%3Dbob"
    );
}

#[tokio::test]
async fn an_admin_lands_on_the_console_and_others_on_their_account() {
    let server = TestServer::start().await;
    server
        .create_user("root", "admin-password-1", Role::Admin)
        .await;
    server
        .create_user("pat", "password-123", Role::Professional)
        .await;
    let admin = server
        .sign_in(&server.browser(), "root", "admin-password-1")
        .await;
    assert_eq!(admin.headers()["location"], "/admin");
    let other = server
        .sign_in(&server.browser(), "pat", "password-123")
        .await;
    assert_eq!(other.headers()["location"], "/account");
}

#[tokio::test]
async fn console_forms_need_this_browsers_csrf_token() {
    let server = TestServer::start().await;
    let target = server
        .create_user("target", "password-123", Role::Explorer)
        .await;
    let admin = signed_in_admin(&server).await;
    let foreign = csrf_token(&page(&server.browser(), server.url("/login")).await.1);
    let url = server.url(&format!("/admin/users/{}/action", target.id));
    for form in [
        vec![("action", "suspend")],
        vec![("action", "suspend"), ("csrf_token", "forged")],
        vec![("action", "suspend"), ("csrf_token", foreign.as_str())],
    ] {
        let response = admin.post(&url).form(&form).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert!(response.text().await.unwrap().contains("form expired"));
    }
    let user = server
        .state
        .store
        .find_user(&target.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.status, AccountStatus::Active);
    let response = admin
        .post(server.url("/admin/clients"))
        .form(&[
            ("name", "sneaky"),
            ("redirect_uris", "https://rp.example/cb"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(server.state.store.list_clients(0, 10).await.unwrap().1, 0);
}

#[tokio::test]
async fn search_finds_part_of_an_email_and_pages_with_a_cursor() {
    let server = TestServer::start().await;
    let admin = signed_in_admin(&server).await;
    let wanted = server
        .create_user("zed.unusual", "password-123", Role::Explorer)
        .await;
    server
        .create_user("other", "password-123", Role::Explorer)
        .await;
    let (status, html) = page(&admin, server.url("/admin/users?q=ZED.UNUS")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains(&format!("/admin/users/{}", wanted.id)),
        "{html}"
    );
    assert!(!html.contains(">other<"));
    let (_, html) = page(&admin, server.url("/admin/users?role=admin")).await;
    assert!(html.contains(">root<") && !html.contains("zed.unusual"));
    // Pages of 50: the 51st user is on the next page, found through its link.
    for i in 0..51 {
        server
            .create_user(&format!("bulk{i:02}"), "password-123", Role::Explorer)
            .await;
    }
    let (_, first) = page(&admin, server.url("/admin/users?q=bulk")).await;
    assert!(first.contains("id=\"next-page\""));
    assert_eq!(first.matches("<tr>").count(), 51, "a head row and 50 users");
    let link = first.find("id=\"next-page\"").unwrap();
    let start = first[..link].rfind("href=\"").unwrap() + "href=\"".len();
    let end = start + first[start..].find('"').unwrap();
    let next = first[start..end]
        .replace("&#x2f;", "/")
        .replace("&amp;", "&");
    let (status, second) = page(&admin, server.url(&next)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        second.matches("<tr>").count(),
        2,
        "a head row and the 51st user"
    );
    assert!(second.contains(">bulk50<") && !second.contains("id=\"next-page\""));
    let (status, _) = page(&admin, server.url("/admin/users?after=junk")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = page(&admin, server.url("/admin/users?status=bogus")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn suspending_a_user_ends_their_session_and_is_audited() {
    let server = TestServer::start().await;
    let target = server
        .create_user("target", "password-123", Role::Explorer)
        .await;
    let victim = server.browser();
    server.sign_in(&victim, "target", "password-123").await;
    assert_eq!(
        page(&victim, server.url("/account")).await.0,
        StatusCode::OK
    );
    let admin = signed_in_admin(&server).await;
    let user_page = server.url(&format!("/admin/users/{}", target.id));
    let (_, html) = page(&admin, user_page.clone()).await;
    assert!(
        html.contains("id=\"end-all\""),
        "the live session is listed"
    );
    let response = admin
        .post(format!("{user_page}/action"))
        .form(&[
            ("csrf_token", csrf_token(&html).as_str()),
            ("action", "suspend"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.text().await.unwrap().contains("suspended"));
    let user = server
        .state
        .store
        .find_user(&target.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.status, AccountStatus::Suspended);
    let response = victim.get(server.url("/account")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "the session died");
    let entries = server
        .state
        .store
        .list_audit(Some(&target.id), None, 50)
        .await
        .unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e.details.to_string().contains("actor_user_id")),
        "the admin is recorded as the actor"
    );
}

#[tokio::test]
async fn deleting_a_user_needs_the_box_ticked() {
    let server = TestServer::start().await;
    let target = server
        .create_user("target", "password-123", Role::Explorer)
        .await;
    let admin = signed_in_admin(&server).await;
    let user_page = server.url(&format!("/admin/users/{}", target.id));
    let (_, html) = page(&admin, user_page.clone()).await;
    let csrf = csrf_token(&html);
    let response = admin
        .post(format!("{user_page}/action"))
        .form(&[("csrf_token", csrf.as_str()), ("action", "delete")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body = response.text().await.unwrap();
    assert!(
        body.contains("tick the box to confirm the deletion"),
        "{body}"
    );
    assert!(body.contains("id=\"profile\""), "the user's page again");
    let still = server.state.store.find_user(&target.id).await.unwrap();
    assert!(still.is_some(), "nothing was deleted");

    let response = admin
        .post(format!("{user_page}/action"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("action", "delete"),
            ("confirm", "yes"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let gone = server.state.store.find_user(&target.id).await.unwrap();
    assert!(gone.is_none(), "the user is deleted");
}

#[tokio::test]
async fn ending_a_users_sessions_signs_them_out() {
    let server = TestServer::start().await;
    let target = server
        .create_user("target", "password-123", Role::Explorer)
        .await;
    let victim = server.browser();
    server.sign_in(&victim, "target", "password-123").await;
    let admin = signed_in_admin(&server).await;
    let user_page = server.url(&format!("/admin/users/{}", target.id));
    let (_, html) = page(&admin, user_page.clone()).await;
    let response = admin
        .post(format!("{user_page}/sessions/end-all"))
        .form(&[("csrf_token", csrf_token(&html))])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("1 session was ended")
    );
    let response = victim.get(server.url("/account")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_client_is_created_with_its_secret_shown_once_and_rotated() {
    let server = TestServer::start().await;
    let admin = signed_in_admin(&server).await;
    let (_, html) = page(&admin, server.url("/admin/clients")).await;
    let csrf = csrf_token(&html);
    let response = admin
        .post(server.url("/admin/clients"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("name", "Billing"),
            ("redirect_uris", "https://billing.example/cb\n"),
            ("kind", "confidential"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    let grab = |html: &str, id: &str| {
        let marker = format!("<code id=\"{id}\">");
        let start = html.find(&marker).expect(id) + marker.len();
        html[start..start + html[start..].find('<').unwrap()].to_string()
    };
    let client_id = grab(&html, "client-id");
    let secret = grab(&html, "client-secret");
    assert!(secret.len() >= 32);
    let stored = server
        .state
        .store
        .find_client(&client_id)
        .await
        .unwrap()
        .unwrap();
    assert!(stored.secret_matches(&secret, server.state.now()));
    // Never shown again.
    let (_, settings) = page(&admin, server.url(&format!("/admin/clients/{client_id}"))).await;
    assert!(!settings.contains(&secret));
    let (_, listing) = page(&admin, server.url("/admin/clients")).await;
    assert!(listing.contains("Billing") && !listing.contains(&secret));
    let response = admin
        .post(server.url(&format!("/admin/clients/{client_id}/rotate")))
        .form(&[("csrf_token", csrf.as_str()), ("grace_secs", "0")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let fresh = grab(&response.text().await.unwrap(), "client-secret");
    assert_ne!(fresh, secret);
    let stored = server
        .state
        .store
        .find_client(&client_id)
        .await
        .unwrap()
        .unwrap();
    assert!(stored.secret_matches(&fresh, server.state.now()));
    assert!(!stored.secret_matches(&secret, server.state.now()));
}

#[tokio::test]
async fn the_dashboard_charts_sign_ins_and_failures() {
    let server = TestServer::start().await;
    server
        .create_user("pat", "password-123", Role::Professional)
        .await;
    server
        .sign_in(&server.browser(), "pat", "password-123")
        .await;
    server
        .sign_in(&server.browser(), "pat", "wrong-password")
        .await;
    server
        .sign_in(&server.browser(), "pat", "wrong-again")
        .await;
    let admin = signed_in_admin(&server).await;
    let (status, html) = page(&admin, server.url("/admin")).await;
    assert_eq!(status, StatusCode::OK);
    // Two sign-ins (pat, the admin) and two failures, in the last hour's bar.
    assert!(html.contains("<svg id=\"chart-24h\""), "{html}");
    assert!(
        html.contains("data-sign-ins=\"2\" data-failures=\"2\""),
        "{html}"
    );
    assert!(html.contains("<span class=\"figure\" id=\"users-total\">2</span>"));
    assert!(html.contains("<span class=\"figure\" id=\"live-sessions\">2</span>"));
    let (_, audit) = page(&admin, server.url("/admin/audit")).await;
    assert!(audit.contains("<svg id=\"chart-7d\""));
}

#[tokio::test]
async fn the_audit_exports_as_csv_with_escaped_rows() {
    let server = TestServer::start().await;
    let admin = signed_in_admin(&server).await;
    // A user agent with a comma and a quote ends up in the login_success row.
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("Agent, \"quoted\"")
        .build()
        .unwrap();
    server
        .create_user("pat", "password-123", Role::Explorer)
        .await;
    server.sign_in(&browser, "pat", "password-123").await;
    let response = admin
        .get(server.url("/admin/audit.csv?action=login_success"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = response.text().await.unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some(
            "timestamp,id,user_id,actor,action,resource,success,error_message,ip_address,user_agent,details"
        )
    );
    assert!(csv.contains("\"Agent, \"\"quoted\"\"\""), "{csv}");
    assert!(csv.lines().skip(1).all(|l| l.contains(",login_success,")));
    assert_eq!(csv.lines().count(), 3, "header and two sign-ins: {csv}");
    let (status, _) = page(&admin, server.url("/admin/audit.csv?action=nope")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
