//! Duplicate checks and the recycling sweep at scale, on a SQLite file (a
//! benchmark, not a timed test; `cargo test` does not run it):
//!
//! ```text
//! cargo bench --bench pools -- [--customers 100000] [--dir /tmp]
//! ```
//!
//! Loads N customers straight through the store (owned by 20 sales people,
//! 5 % in the public pool, about 1 % sharing a phone number, the last
//! activity spread over 31 days), then measures: building the duplicate keys
//! of all of them, the on-demand duplicate check, creating a customer (which
//! checks and keeps the keys), the company-wide duplicate report, the sweep
//! dry run, the sweep (steady state: about a 31st of the customers due, the
//! next three days' worth warned) and the sweep run again (nothing to do).

use chrono::{DateTime, Duration, Utc};
use crm::clock::ManualClock;
use crm::dedupe::DuplicateQuery;
use crm::org::{NewCompany, NewUser, RoleSpec};
use crm::pool::{Place, PoolLimits, PoolSpec, RuleKind, RuleSpec, SweepOptions};
use crm::query::{ListQuery, PageRequest};
use crm::schema::Table;
use crm::store::{ChangeSet, Op};
use crm::value::Value;
use crm::{Crm, Entity, Fields};
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

// The allocator of the example CLI and the io benchmark.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A small deterministic generator (no dependency needed).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

fn phone(i: u64) -> String {
    format!("010-6{:07}", i % 10_000_000)
}

type BenchResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

async fn run(n: u64, dir: std::path::PathBuf) -> BenchResult {
    let path = dir.join(format!("crm-bench-pools-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let store: Arc<dyn crm::store::Store> = Arc::new(crm::sqlite::SqliteStore::open(&path)?);
    let now: DateTime<Utc> = "2026-11-27T02:00:00Z".parse()?;
    let clock = Arc::new(ManualClock::new(now));
    let crm = Crm::new(store.clone(), clock.clone());
    let (company, admin_id) = crm
        .bootstrap(NewCompany {
            name: "压测科技有限公司".into(),
            code: "BENCH".into(),
            admin_username: "admin".into(),
            admin_display_name: "管理员".into(),
            admin_password: None,
        })
        .await?;
    let admin = crm.actor(admin_id).await?;
    let sales = crm
        .create_department(&admin, "销售部", admin.department_id)
        .await?;
    let role = crm
        .create_role(
            &admin,
            RoleSpec {
                name: "销售".into(),
                is_admin: false,
                permissions: ["read", "create", "update", "delete", "transfer"]
                    .iter()
                    .map(|a| format!("customer:{a}:own").parse())
                    .collect::<Result<_, _>>()?,
                field_rules: Vec::new(),
            },
        )
        .await?;
    let mut users = Vec::new();
    for i in 0..20 {
        users.push(
            crm.create_user(
                &admin,
                NewUser {
                    username: format!("sales{i}"),
                    display_name: format!("销售{i}"),
                    department_id: Some(sales.id),
                    role_ids: vec![role.id],
                    ..NewUser::default()
                },
            )
            .await?,
        );
    }
    let spec = |limits: PoolLimits| PoolSpec {
        name: "公海".into(),
        member_departments: vec![sales.id],
        limits: PoolLimits {
            warn_days: 3,
            reclaim_cooldown_days: 7,
            ..limits
        },
        ..PoolSpec::default()
    };
    let pool = crm.create_pool(&admin, spec(PoolLimits::default())).await?;
    let mut rule = RuleSpec::new(RuleKind::NoFollowUp, 30);
    rule.level_days.insert("A".into(), 45);
    crm.add_recycle_rule(&admin, pool.id, rule).await?;
    let mut no_deal = RuleSpec::new(RuleKind::NoDeal, 180);
    no_deal.exempt_deals = true;
    crm.add_recycle_rule(&admin, pool.id, no_deal).await?;

    // Load.
    let t = Instant::now();
    let mut rng = Lcg(42);
    let mut cs = ChangeSet::default();
    for i in 0..n {
        let id = crm::clock::new_uuid(now - Duration::days(200) + Duration::seconds(i as i64));
        let name = format!("压测客户{i}科技有限公司");
        let owned = rng.next() % 100 >= 5;
        let owner = &users[(rng.next() % 20) as usize];
        // The last activity, 0..31 days ago: held since then, or followed up then.
        let last = now - Duration::minutes((rng.next() % (31 * 24 * 60)) as i64);
        let followed = rng.next().is_multiple_of(2);
        let since = if followed {
            last - Duration::days((rng.next() % 60) as i64)
        } else {
            last
        };
        let level = ["A", "B", "C", "B"][(rng.next() % 4) as usize];
        let shared_phone = rng.next().is_multiple_of(100);
        // About 1 % share one of 500 numbers.
        let p = if shared_phone {
            phone(i % 500)
        } else {
            phone(1_000_000 + i)
        };
        let key = crm::validate::phone(&p).map(|x| x.key).unwrap_or_default();
        let mut values = vec![
            ("id", Value::Id(id)),
            ("company_id", Value::Id(company.id.0)),
            ("version", Value::Int(1)),
            ("created_at", Value::Timestamp(since)),
            ("updated_at", Value::Timestamp(since)),
            ("created_by", Value::Id(owner.id.0)),
            ("custom", Value::Json(json!({}))),
            ("code", Value::Text(format!("KH-BENCH-{i:07}"))),
            ("name_key", crm::validate::company_name_key(&name).into()),
            ("pinyin_keys", Value::Text(format!("yckh{i}"))),
            ("name", Value::Text(name)),
            ("kind", "enterprise".into()),
            ("level", level.into()),
            ("phone", Value::Text(p)),
            ("phone_key", Value::Text(key)),
            (
                "email",
                Value::Text(format!("contact{i}@bench{}.cn", i % 5000)),
            ),
            (
                "email_key",
                Value::Text(format!("contact{i}@bench{}.cn", i % 5000)),
            ),
            ("attachments", Value::Json(json!([]))),
            ("locked", rng.next().is_multiple_of(200).into()),
            ("open_opportunities", Value::Int(0)),
        ];
        if followed {
            values.push(("last_follow_up_at", Value::Timestamp(last)));
        }
        if owned {
            values.extend([
                ("owner_id", Value::Id(owner.id.0)),
                ("department_id", Value::Id(sales.id.0)),
                ("place", "private".into()),
                ("owned_since", Value::Timestamp(since)),
            ]);
        } else {
            values.extend([
                ("place", "public".into()),
                ("pool_id", Value::Id(pool.id.0)),
            ]);
        }
        cs.ops.push(Op::Insert {
            table: Table::Customers,
            values,
        });
        if cs.ops.len() == 5000 {
            store.apply(&std::mem::take(&mut cs)).await?;
        }
    }
    store.apply(&cs).await?;
    let load = ms(t);
    println!("loaded {n} customers in {:.1} s", load / 1000.0);

    let t = Instant::now();
    let stats = crm.rebuild_duplicate_keys(&admin).await?;
    let rebuild = ms(t);
    println!(
        "built the duplicate keys in {:.1} s ({} key rows added, {} re-flagged)",
        rebuild / 1000.0,
        stats.added,
        stats.flagged
    );

    // On-demand duplicate checks: half hit an existing name, half a phone.
    let seller = crm.actor(users[0].id).await?;
    let rounds = 200u64;
    let t = Instant::now();
    let mut hits = 0;
    for k in 0..rounds {
        let i = (k * 7919) % n;
        let mut f = Fields::new();
        if k % 2 == 0 {
            f.insert("name".into(), json!(format!("压测客户{i}科技有限公司")));
        } else {
            f.insert("name".into(), json!(format!("不存在的公司{k}")));
            f.insert("phone".into(), json!(phone(1_000_000 + i)));
        }
        hits += crm.find_duplicates(&seller, &f).await?.len();
    }
    let check = ms(t) / rounds as f64;
    println!("duplicate check: {check:.2} ms each ({hits} matches in {rounds} checks)");

    // Creating customers: the refusing checks plus keeping the keys.
    let t = Instant::now();
    for k in 0..rounds {
        let mut f = Fields::new();
        f.insert("name".into(), json!(format!("新建压测{k}有限公司")));
        f.insert("phone".into(), json!(phone(5_000_000 + k)));
        f.insert("email".into(), json!(format!("new{k}@bench.cn")));
        crm.create_record(&seller, Entity::Customer, f).await?;
    }
    let create = ms(t) / rounds as f64;
    println!("create with duplicate checks and keys: {create:.2} ms each");

    let t = Instant::now();
    let mut groups = 0;
    let mut q = DuplicateQuery {
        limit: 1000,
        ..DuplicateQuery::default()
    };
    loop {
        let r = crm.duplicate_report(&admin, &q).await?;
        groups += r.groups.len();
        match r.next {
            Some(next) => q.after = Some(next),
            None => break,
        }
    }
    let report = ms(t);
    println!("duplicate report: {groups} groups in {report:.0} ms");

    let t = Instant::now();
    let dry = crm
        .sweep(
            &admin,
            &SweepOptions {
                dry_run: true,
                ..SweepOptions::default()
            },
        )
        .await?;
    let dry_ms = ms(t);
    println!(
        "sweep dry run: {} due, {} due within 3 days, in {dry_ms:.0} ms",
        dry.recycled.len(),
        dry.upcoming.len()
    );
    let t = Instant::now();
    let s = crm.sweep(&admin, &SweepOptions::default()).await?;
    let sweep = ms(t);
    println!(
        "sweep: {} recycled, {} warned, {} refused, in {:.1} s",
        s.recycled.len(),
        s.warned.len(),
        s.refused.len(),
        sweep / 1000.0
    );
    let t = Instant::now();
    let again = crm.sweep(&admin, &SweepOptions::default()).await?;
    let again_ms = ms(t);
    println!(
        "sweep again: {} recycled, {} warned, in {again_ms:.0} ms",
        again.recycled.len(),
        again.warned.len()
    );

    // A sales person's customer list (scope "own": owned or shared), the
    // first page with its total.
    let t = Instant::now();
    let mut listed = 0;
    for _ in 0..20 {
        let page = crm
            .list_records(
                &seller,
                Entity::Customer,
                &ListQuery::default().with_total(),
            )
            .await?;
        listed = page.total.unwrap_or(0);
    }
    println!(
        "a sales person's list, first page and total: {:.1} ms ({listed} customers)",
        ms(t) / 20.0
    );

    // Claims under caps: each counts what the claimer and the department
    // hold (about 5 000 and 100 000 customers) before it writes.
    let capped = crm
        .update_pool(
            &admin,
            pool.id,
            pool.version,
            spec(PoolLimits {
                max_claims_per_day: Some(10_000),
                max_owned_per_user: Some(100_000),
                max_owned_per_department: Some(1_000_000),
                ..PoolLimits::default()
            }),
        )
        .await?;
    let claimer = crm.actor(users[1].id).await?;
    let public = crm
        .pool_customers(
            &claimer,
            capped.id,
            Place::Public,
            &ListQuery {
                page: PageRequest::Offset {
                    page: 1,
                    per_page: 200,
                },
                ..ListQuery::default()
            },
        )
        .await?;
    let t = Instant::now();
    let mut claimed = 0;
    for r in &public.items {
        claimed += crm.claim(&claimer, &[r.id]).await?.done.len();
    }
    println!(
        "claim under caps: {:.2} ms each ({claimed} of {} claimed; the rest the claimer gave up within the cooldown)",
        ms(t) / public.items.len().max(1) as f64,
        public.items.len()
    );

    clock.advance(Duration::days(1));
    let t = Instant::now();
    let next_day = crm.sweep(&admin, &SweepOptions::default()).await?;
    println!(
        "sweep a day later: {} recycled, {} warned, in {:.1} s",
        next_day.recycled.len(),
        next_day.warned.len(),
        ms(t) / 1000.0
    );
    drop(crm);
    drop(store);
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(path.with_extension("db-wal"));
    let _ = std::fs::remove_file(path.with_extension("db-shm"));
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: u64 = arg(&args, "--customers")
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let dir = arg(&args, "--dir")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(run(n, dir)) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
