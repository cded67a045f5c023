//! The benchmark's pgbench scripts stay in step with what a create and a booking
//! really write (moved from the gateway's `tests/api/bench.rs`).

mod gateway;

use gateway::TestApp;

#[test]
fn shipped_pgbench_script_matches_the_code() {
    let shipped = include_str!("../../../bench/pgbench-create.sql");
    assert_eq!(
        shipped,
        cupola_bench::pgbench_script(),
        "regenerate: cargo run -p cupola-bench -- pgbench-script > bench/pgbench-create.sql"
    );
}

/// pgbench replaying the script writes Patients that the gateway then finds by
/// search, as if it had created them itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbench_script_writes_patients_the_gateway_finds() {
    let app = TestApp::spawn().await;
    pgbench(&app, &cupola_bench::pgbench_script());
    let found = app
        .get_json("Patient?identifier=http://example.org/cupola/sid/bench-mrn|B000000000000&_total=accurate", 200)
        .await;
    assert_eq!(found["total"], 6);
    assert_eq!(found["entry"][0]["resource"]["name"][0]["family"], "Rossi");
}

/// Runs `script` three times on each of two pgbench clients against the app's database.
fn pgbench(app: &TestApp, script: &str) {
    let url = url::Url::parse(app.db_url()).unwrap();
    let file = std::env::temp_dir().join(format!("cupola-test-pgbench-{}.sql", uuid::Uuid::new_v4()));
    std::fs::write(&file, script).unwrap();
    let out = std::process::Command::new("pgbench")
        .args(["-n", "-M", "prepared", "-c", "2", "-t", "3", "-f"])
        .arg(&file)
        .args(["-h", url.host_str().unwrap(), "-p", &url.port().unwrap_or(5432).to_string(), "-U", "postgres"])
        .arg(url.path().trim_start_matches('/'))
        .output()
        .expect("pgbench runs");
    let _ = std::fs::remove_file(&file);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn shipped_booking_pgbench_script_matches_the_code() {
    assert_eq!(
        include_str!("../../../bench/pgbench-book.sql"),
        cupola_bench::pgbench_book_script().expect("the booking script"),
        "regenerate: cargo run -p cupola-bench -- pgbench-book-script > bench/pgbench-book.sql"
    );
}

/// pgbench replaying one booking's writes runs on the gateway's schema and leaves
/// the rows a booking leaves: per transaction a Slot in two versions (busy in the
/// index, as the store's update leaves it), the Appointment and
/// its AuditEvent as resources, a place, a code and a booking row, and the ticket: a
/// ChargeItem and an Invoice, a ticket row and its line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn booking_pgbench_script_writes_what_a_booking_writes() {
    let app = TestApp::spawn().await;
    pgbench(&app, &cupola_bench::pgbench_book_script().expect("the booking script"));
    let count = |q: &'static str| {
        let url = app.db_url().to_string();
        async move {
            let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await.unwrap();
            sqlx::query_scalar::<_, i64>(q).fetch_one(&mut c).await.unwrap()
        }
    };
    assert_eq!(count("SELECT count(*) FROM resources WHERE res_type IN ('Slot', 'Appointment')").await, 12);
    assert_eq!(count("SELECT count(*) FROM resources WHERE res_type = 'Slot' AND version = 2").await, 6);
    let slot_versions =
        "SELECT count(*) FROM resource_versions v JOIN resources r ON r.pk = v.res_pk WHERE r.res_type = 'Slot'";
    assert_eq!(count(slot_versions).await, 12);
    assert_eq!(count("SELECT count(*) FROM slot_claims").await, 6);
    assert_eq!(count("SELECT count(*) FROM bookings").await, 6);
    assert_eq!(count("SELECT count(*) FROM resources WHERE res_type IN ('ChargeItem', 'Invoice')").await, 12);
    assert_eq!(count("SELECT count(*) FROM tickets WHERE owed_cents = 1162 AND length(notice) = 18").await, 6);
    assert_eq!(count("SELECT count(*) FROM ticket_lines").await, 6);
    let found = app
        .get_json("Appointment?identifier=http://example.org/cupola/sid/booking-code|K7MD-QX9A&_total=accurate", 200)
        .await;
    assert_eq!(found["total"], 6, "the Appointments are indexed as the gateway indexes them");
    assert_eq!(app.get_json("Slot?status=busy&_total=accurate", 200).await["total"], 6);
    assert_eq!(app.get_json("Slot?status=free&schedule=Schedule/bench-0&_total=accurate", 200).await["total"], 0);
}
