package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
	"github.com/cloudimage/cloudimage/storetest"
	"github.com/jackc/pgx/v5"
)

// envDSN names the variable that enables these tests: the DSN of a
// PostgreSQL database in which they may create and drop databases.
const envDSN = "CLOUDIMAGE_TEST_POSTGRES"

// adminDSN returns the DSN the environment gives, skipping the test when
// there is none, or failing it on CI, where a missing server is a broken
// setup rather than a choice.
func adminDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(envDSN)
	if dsn == "" {
		msg := envDSN + " is not set: set it to the DSN of a PostgreSQL database in which tests may " +
			"create databases, e.g. postgres://postgres@127.0.0.1:25432/postgres?sslmode=disable"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return dsn
}

// dsnWithDatabase returns dsn with its database replaced by name.
func dsnWithDatabase(dsn, name string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		if u, err := url.Parse(dsn); err == nil {
			u.Path = "/" + name
			return u.String()
		}
	}
	return dsn + " dbname=" + name // a later keyword wins
}

// createDatabase creates an empty database and returns its name. Its
// default collation is ICU's en-US, which sorts "B" after "a": the store
// must sort text byte by byte all the same. A server without ICU gets
// its default collation.
func createDatabase(ctx context.Context, admin string) (string, error) {
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", fmt.Errorf("connect to %s: %w", envDSN, err)
	}
	defer conn.Close(ctx)
	var b [8]byte
	rand.Read(b[:])
	name := "ci_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+name+
		` TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu ICU_LOCALE 'en-US'`); err != nil {
		if _, err := conn.Exec(ctx, `CREATE DATABASE `+name); err != nil {
			return "", fmt.Errorf("create database %s: %w", name, err)
		}
	}
	return name, nil
}

// dropDatabase drops the database name, closing what connections to it
// are left.
func dropDatabase(ctx context.Context, admin, name string) error {
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

// freshDatabase creates an empty database (see createDatabase), dropped
// when the test ends, and returns its DSN.
func freshDatabase(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	admin := adminDSN(t)
	name, err := createDatabase(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := dropDatabase(ctx, admin, name); err != nil {
			t.Error(err)
		}
	})
	return dsnWithDatabase(admin, name)
}

// sharedDatabases are databases that outlive one test (the plan tests'
// catalog); TestMain drops them at the end.
var sharedDatabases []string

func TestMain(m *testing.M) {
	code := m.Run()
	if catalog.db != nil {
		catalog.db.Close()
	}
	for _, name := range sharedDatabases {
		if err := dropDatabase(context.Background(), os.Getenv(envDSN), name); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// open returns a store on a fresh database, closed when the test ends.
func open(t testing.TB) *DB {
	t.Helper()
	return openWith(t, freshDatabase(t), Options{})
}

func openWith(t testing.TB, dsn string, opts Options) *DB {
	t.Helper()
	db, err := OpenWith(context.Background(), dsn, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestConformance(t *testing.T) {
	storetest.TestMetadataStore(t, func(t *testing.T) storetest.MetadataStore { return open(t) })
}

func TestAuthFailureConformance(t *testing.T) {
	storetest.TestAuthFailureStore(t, func(t *testing.T) cloudimage.AuthFailureStore { return open(t) })
}

func TestLeaseConformance(t *testing.T) {
	storetest.TestLeaseStore(t, func(t *testing.T) cloudimage.LeaseStore { return open(t) })
}

// TestMigrateConcurrently opens one new database from several replicas
// at once: each must start, every migration must be applied exactly
// once, and the schema must then work; opening again keeps the data.
func TestMigrateConcurrently(t *testing.T) {
	ctx := context.Background()
	dsn := freshDatabase(t)
	const replicas = 4
	dbs := make([]*DB, replicas)
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Go(func() { dbs[i], errs[i] = Open(ctx, dsn) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		defer dbs[i].Close()
	}
	rows, err := dbs[0].pool.Query(ctx, `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatal(err)
	}
	names, err := migrations.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	want := make([]int, len(names))
	for i, e := range names {
		fmt.Sscanf(e.Name(), "%d_", &want[i])
	}
	if !slices.Equal(versions, want) {
		t.Fatalf("applied migrations %v, want %v once each", versions, want)
	}

	for i := range 3 {
		p := &cloudimage.Project{ID: fmt.Sprintf("%032d", i), Name: fmt.Sprint("p", i), AppKey: fmt.Sprint("k", i)}
		if err := dbs[i].CreateProject(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	again := openWith(t, dsn, Options{})
	if projects, err := again.Projects(ctx); err != nil || len(projects) != 3 {
		t.Fatalf("after reopening: got %d projects, %v; want 3", len(projects), err)
	}
}

// TestPing checks that Ping answers for an open database and fails for a
// closed one.
func TestPing(t *testing.T) {
	db, err := Open(context.Background(), freshDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	db.Close()
	if err := db.Ping(context.Background()); err == nil {
		t.Fatal("Ping of a closed database: no error")
	}
}

// TestOpenUnreachable checks that a server that does not answer is
// EUNAVAILABLE and that a DSN that does not parse is refused without
// quoting it (it may hold a password).
func TestOpenUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Open(ctx, "postgres://u:secret@127.0.0.1:1/db?sslmode=disable&connect_timeout=2")
	if got := cloudimage.ErrorCode(err); got != cloudimage.EUNAVAILABLE {
		t.Errorf("unreachable server: %v (code %s), want %s", err, got, cloudimage.EUNAVAILABLE)
	}
	_, err = Open(ctx, "postgres://u:secret@127.0.0.1:notaport/db")
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("bad DSN: got %v, want an error that does not quote the password", err)
	}
}

// TestMembersCascade checks the schema's promise that an image's members
// and tags go with its row, deleted by hand as an operator's cleanup would.
func TestMembersCascade(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	p := &cloudimage.Project{ID: "p", Name: "p", AppKey: "k"}
	if err := db.CreateProject(ctx, p); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	for _, id := range []string{"gone", "kept"} {
		img := &cloudimage.Image{ID: id, Name: id, Status: cloudimage.StatusQueued, Visibility: cloudimage.VisibilityShared,
			Owner: p.ID, Tags: []string{"t"}, Properties: map[string]string{}, CreatedAt: at, UpdatedAt: at}
		if err := db.CreateImage(ctx, img); err != nil {
			t.Fatal(err)
		}
		for _, member := range []string{"m1", "m2"} {
			m := &cloudimage.Member{ImageID: id, ProjectID: member, Status: cloudimage.MemberAccepted, CreatedAt: at, UpdatedAt: at}
			if err := db.AddMember(ctx, m, cloudimage.MaxMembers); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := db.pool.Exec(ctx, `DELETE FROM images WHERE id = 'gone'`); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"image_members", "image_tags"} {
		var n int
		if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM `+table+` WHERE image_id = 'gone'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%s keeps %d rows of a deleted image", table, n)
		}
	}
	if _, err := db.Members(ctx, "gone"); cloudimage.ErrorCode(err) != cloudimage.ENOTFOUND {
		t.Errorf("members of a deleted row: got %v, want ENOTFOUND", err)
	}
	if ms, err := db.Members(ctx, "kept"); err != nil || len(ms) != 2 {
		t.Errorf("members of the other image: got %d, %v; want 2", len(ms), err)
	}
}

// TestBusyDatabase holds locks on the tables from another connection, as
// a long migration or an operator's LOCK TABLE would: each write waits
// the configured busy timeout, then fails with EUNAVAILABLE and writes
// nothing; reads go on beside the locks, and once they are released the
// same writes succeed.
func TestBusyDatabase(t *testing.T) {
	ctx := context.Background()
	dsn := freshDatabase(t)
	const busy = 300 * time.Millisecond
	db := openWith(t, dsn, Options{BusyTimeout: busy})
	p := &cloudimage.Project{ID: "0123456789abcdef0123456789abcdef", Name: "p", AppKey: "key", CreatedAt: time.Now()}
	if err := db.CreateProject(ctx, p); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	img := &cloudimage.Image{ID: "11111111-1111-4111-8111-111111111111", Status: cloudimage.StatusQueued,
		Visibility: cloudimage.VisibilityPrivate, Owner: p.ID, CreatedAt: now, UpdatedAt: now}
	project := &cloudimage.Project{ID: "fedcba9876543210fedcba9876543210", Name: "q", AppKey: "key-q", CreatedAt: now}
	writes := []struct {
		name string
		do   func() error
	}{
		{"create image", func() error { return db.CreateImage(ctx, img) }},
		{"create project", func() error { return db.CreateProject(ctx, project) }},
		{"delete expired tokens", func() error { _, err := db.DeleteExpiredTokens(ctx, now); return err }},
	}

	locker, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Close(ctx)
	lock, err := locker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// EXCLUSIVE mode lets plain reads through and nothing else.
	if _, err := lock.Exec(ctx, `LOCK TABLE images, projects, tokens IN EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	for _, w := range writes {
		start := time.Now()
		err := w.do()
		took := time.Since(start)
		if got := cloudimage.ErrorCode(err); got != cloudimage.EUNAVAILABLE {
			t.Fatalf("%s while locked: %v (code %s), want %s", w.name, err, got, cloudimage.EUNAVAILABLE)
		}
		if msg := cloudimage.ErrorMessage(err); msg != "The database is busy; try again later." {
			t.Errorf("%s while locked: message %q", w.name, msg)
		}
		if cloudimage.RetryAfter(err) <= 0 {
			t.Errorf("%s while locked: %v says not when to retry", w.name, err)
		}
		if !strings.Contains(err.Error(), codeLockNotAvailable) {
			t.Errorf("%s while locked: %v keeps no cause for the log", w.name, err)
		}
		// It waited for about the busy timeout and no longer.
		if took < busy*2/3 || took > busy+5*time.Second {
			t.Errorf("%s while locked failed after %v, want about %v", w.name, took, busy)
		}
	}
	if _, err := db.Image(ctx, img.ID); cloudimage.ErrorCode(err) != cloudimage.ENOTFOUND {
		t.Errorf("read beside the lock: %v, want ENOTFOUND (nothing written, reads still work)", err)
	}
	if err := lock.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	for _, w := range writes {
		if err := w.do(); err != nil {
			t.Errorf("%s after the lock is released: %v", w.name, err)
		}
	}
	if _, err := db.Image(ctx, img.ID); err != nil {
		t.Errorf("image created after the lock is released: %v", err)
	}
}

// TestDeadlockIsRetried makes two transactions lock two rows in opposite
// orders. PostgreSQL aborts one of them with a deadlock; tx must run that
// one again, so that both succeed, the aborted one on its second attempt.
func TestDeadlockIsRetried(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	for _, name := range []string{"a", "b"} {
		if _, err := db.pool.Exec(ctx, `INSERT INTO leases (name, holder, expires_at) VALUES ($1, '', 0)`, name); err != nil {
			t.Fatal(err)
		}
	}
	var (
		mu       sync.Mutex
		attempts int
		wg       sync.WaitGroup
		both     sync.WaitGroup // both hold their first row
	)
	both.Add(2)
	errs := make([]error, 2)
	for i, order := range [][2]string{{"a", "b"}, {"b", "a"}} {
		first := true
		wg.Go(func() {
			errs[i] = db.tx(ctx, func(tx pgx.Tx) error {
				mu.Lock()
				attempts++
				mu.Unlock()
				for j, name := range order {
					if _, err := tx.Exec(ctx, `UPDATE leases SET holder = $2 WHERE name = $1`, name, fmt.Sprint(i)); err != nil {
						return err
					}
					if j == 0 && first {
						first = false
						both.Done()
						both.Wait()
					}
				}
				return nil
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("transaction %d: %v", i, err)
		}
	}
	if attempts != 3 {
		t.Errorf("%d attempts in all, want 3: one of the two deadlocked and ran again", attempts)
	}
}

// TestRetryIsBounded checks that a transaction that keeps deadlocking is
// run maxAttempts times and then is EUNAVAILABLE with the cause kept,
// and that other errors are not retried.
func TestRetryIsBounded(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	for _, c := range []struct {
		code     string
		attempts int
		want     string
	}{
		{codeDeadlock, maxAttempts, cloudimage.EUNAVAILABLE},
		{codeSerialization, maxAttempts, cloudimage.EUNAVAILABLE},
		{codeUniqueViolation, 1, cloudimage.EINTERNAL},
	} {
		n := 0
		err := db.tx(ctx, func(tx pgx.Tx) error {
			n++
			// A real error of the code: raised by the server.
			_, err := tx.Exec(ctx, `DO $$ BEGIN RAISE EXCEPTION 'test' USING ERRCODE = '`+c.code+`'; END $$`)
			return err
		})
		if n != c.attempts || cloudimage.ErrorCode(err) != c.want || sqlState(err) != c.code {
			t.Errorf("code %s: %d attempts, error %v; want %d attempts and %s", c.code, n, err, c.attempts, c.want)
		}
	}
}

// TestUnstorableText checks writes of the texts PostgreSQL cannot hold
// (NUL, bytes that are not UTF-8): they are EINVALID, not an internal
// error from the server, and write nothing. (Reads of such keys are the
// conformance suite's OddKeys.) The service refuses such text before it
// reaches a store; SQLite would keep it.
func TestUnstorableText(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	p := &cloudimage.Project{ID: "p", Name: "p", AppKey: "k"}
	if err := db.CreateProject(ctx, p); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	img := &cloudimage.Image{ID: "i", Name: "n", Status: cloudimage.StatusActive, Visibility: cloudimage.VisibilityPublic,
		Owner: p.ID, Properties: map[string]string{}, CreatedAt: at, UpdatedAt: at}
	if err := db.CreateImage(ctx, img); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"a\x00b", "\xff"} {
		named := *img
		named.ID, named.Name = "j", bad
		tagged := *img
		tagged.ID, tagged.Tags = "k", []string{bad}
		property := *img
		property.ID, property.Properties = "l", map[string]string{"k": bad}
		_, update := db.UpdateImage(ctx, img.ID, func(img *cloudimage.Image) error {
			img.Name = bad
			return nil
		})
		for name, err := range map[string]error{
			"CreateImage name":     db.CreateImage(ctx, &named),
			"CreateImage tag":      db.CreateImage(ctx, &tagged),
			"CreateImage property": db.CreateImage(ctx, &property),
			"UpdateImage name":     update,
			"CreateProject":        db.CreateProject(ctx, &cloudimage.Project{ID: bad, Name: "x", AppKey: "y"}),
			"CreateUser":           db.CreateUser(ctx, &cloudimage.User{ID: "u", Name: bad}),
			"AddMember": db.AddMember(ctx, &cloudimage.Member{ImageID: img.ID, ProjectID: bad,
				Status: cloudimage.MemberPending}, cloudimage.MaxMembers),
		} {
			if cloudimage.ErrorCode(err) != cloudimage.EINVALID {
				t.Errorf("%s %q: %v, want EINVALID", name, bad, err)
			}
		}
	}
	got, err := db.ListImages(ctx, cloudimage.ImageQuery{Viewer: p.ID, Limit: 10, Tags: true})
	if err != nil || len(got) != 1 || got[0].Name != img.Name || len(got[0].Tags) != 0 {
		t.Errorf("after refused writes: got %v, %v; want the one image as it was", got, err)
	}
}

// TestListQueryBindsCallerStrings checks that no caller string reaches the
// SQL text: every one is a bound argument.
func TestListQueryBindsCallerStrings(t *testing.T) {
	evil := "x' OR 1=1 --"
	size := int64(1)
	yes := true
	q := cloudimage.ImageQuery{
		Viewer: evil, Visibility: cloudimage.ListAll, MemberStatus: cloudimage.MemberPending, Limit: 10,
		Filter: cloudimage.ImageFilter{
			IDs: []string{evil}, Names: []string{evil}, Statuses: []cloudimage.Status{cloudimage.Status(evil)},
			ContainerFormats: []string{evil}, DiskFormats: []string{evil}, SizeMin: &size, SizeMax: &size,
			Protected: &yes, Hidden: &yes, Tags: []string{evil}, Properties: map[string]string{evil: evil},
			CreatedAt: []cloudimage.TimeFilter{{Op: cloudimage.OpGt, Time: time.Now()}},
		},
		Sort:  []cloudimage.Sort{{Key: cloudimage.SortName}, {Key: cloudimage.SortSize, Desc: true}},
		After: &cloudimage.Image{ID: evil, Name: evil, Status: cloudimage.Status(evil), DiskFormat: evil},
	}
	query, args, err := listQuery(q)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(query, "OR 1=1") {
		t.Fatalf("a caller string is in the SQL:\n%s", query)
	}
	n := 0
	for _, a := range args {
		switch a := a.(type) {
		case string:
			n += strings.Count(a, evil)
		case []string:
			n += len(slices.DeleteFunc(slices.Clone(a), func(s string) bool { return s != evil }))
		}
	}
	// The viewer, the 5 lists, the tag, the properties (key and value, in
	// one JSON text), and the marker's name and id.
	if n != 11 {
		t.Fatalf("bound the caller string %d times, want 11: %v", n, args)
	}

	q.Sort = []cloudimage.Sort{{Key: "name; DROP TABLE images"}}
	if _, _, err := listQuery(q); cloudimage.ErrorCode(err) != cloudimage.EINVALID {
		t.Fatalf("unknown sort key: got %v, want EINVALID", err)
	}
}

func TestVersionerConformance(t *testing.T) {
	storetest.TestVersioner(t, func(t *testing.T) (s, other storetest.VersionedStore) {
		dsn := freshDatabase(t)
		return openWith(t, dsn, Options{}), openWith(t, dsn, Options{})
	})
}
