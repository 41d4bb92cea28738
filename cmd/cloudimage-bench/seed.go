package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cloudimage/cloudimage"
	"github.com/cloudimage/cloudimage/postgres"
	"github.com/cloudimage/cloudimage/sqlite"
	"github.com/google/uuid"
)

// seedStore is what seeding needs of a database: *sqlite.DB and
// *postgres.DB.
type seedStore interface {
	cloudimage.IdentityStore
	InsertImages(ctx context.Context, imgs []*cloudimage.Image) error
	Close() error
}

// seedConfig says what to seed.
type seedConfig struct {
	DataDir  string  // holds cloudimage.db unless Database is set
	Database string  // a postgres:// DSN; empty: SQLite in DataDir
	N        int     // images
	Batch    int     // images per transaction
	Active   float64 // the fraction of images that are active and tagged "x"
	State    string  // where the state file goes
}

// state is what seed leaves for run: how to authenticate and which images
// to ask for. Deletes take queued images only, so that the active ones the
// other scenarios read survive a delete scenario.
type state struct {
	N          int      `json:"n"`
	AppKey     string   `json:"appkey"`
	ProjectID  string   `json:"project_id"`
	Username   string   `json:"username"`
	Password   string   `json:"password"`
	DeepMarker string   `json:"deep_marker"` // about 90% down the default order
	GetIDs     []string `json:"get_ids"`     // active images
	DeleteIDs  []string `json:"delete_ids"`  // queued images
	SeedTime   float64  `json:"seed_seconds"`
}

// Bounds on the IDs a state file lists.
const (
	maxGetIDs    = 1000
	maxDeleteIDs = 100000
)

func seedCommand(ctx context.Context, args []string, stdout io.Writer) error {
	var cfg seedConfig
	fs := flag.NewFlagSet("seed", flag.ContinueOnError)
	fs.StringVar(&cfg.DataDir, "data-dir", "", "the server's data directory (SQLite)")
	fs.StringVar(&cfg.Database, "database", "", "a postgres:// DSN instead of SQLite")
	fs.IntVar(&cfg.N, "n", 10000, "images to insert")
	fs.IntVar(&cfg.Batch, "batch", 5000, "images per transaction")
	fs.Float64Var(&cfg.Active, "active", 0.5, "fraction of images active with tag x")
	fs.StringVar(&cfg.State, "state", "", "state file for run (default DATA-DIR/bench-state.json)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.State == "" {
		if cfg.DataDir == "" {
			return fmt.Errorf("seed: give -state or -data-dir")
		}
		cfg.State = filepath.Join(cfg.DataDir, "bench-state.json")
	}
	st, err := seed(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "seeded %d images in %.2fs (%.0f images/s); state in %s\n",
		st.N, st.SeedTime, float64(st.N)/st.SeedTime, cfg.State)
	return nil
}

// openSeedStore opens the database cfg names, creating its schema.
func openSeedStore(ctx context.Context, cfg seedConfig) (seedStore, error) {
	if strings.HasPrefix(cfg.Database, "postgres://") || strings.HasPrefix(cfg.Database, "postgresql://") {
		return postgres.Open(ctx, cfg.Database)
	} else if cfg.Database != "" {
		return nil, fmt.Errorf("seed: -database must be a postgres:// DSN")
	}
	if cfg.DataDir == "" {
		return nil, fmt.Errorf("seed: give -data-dir or -database")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, err
	}
	db, err := sqlite.Open(ctx, filepath.Join(cfg.DataDir, "cloudimage.db"))
	if err != nil {
		return nil, err
	}
	return db, nil
}

// seed inserts cfg.N images owned by a new project and user, and writes
// the state file.
func seed(ctx context.Context, cfg seedConfig) (*state, error) {
	if cfg.N <= 0 || cfg.Batch <= 0 {
		return nil, fmt.Errorf("seed: -n and -batch must be positive")
	}
	db, err := openSeedStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer db.Close()

	identity := cloudimage.NewIdentityService(db, time.Hour)
	suffix := randomName(4)
	p, err := identity.CreateProject(ctx, "bench-"+suffix)
	if err != nil {
		return nil, fmt.Errorf("create project: %w", err)
	}
	u, password, err := identity.CreateUser(ctx, p.ID, "bench-"+suffix, "", cloudimage.RoleMember)
	if err != nil {
		return nil, fmt.Errorf("create user: %w", err)
	}
	st := &state{N: cfg.N, AppKey: p.AppKey, ProjectID: p.ID, Username: u.Name, Password: password}

	start := time.Now()
	// Image i is created i microseconds after base, so the default order
	// (newest first) puts it at position N-1-i.
	base := time.Now().UTC().Add(-time.Duration(cfg.N) * time.Microsecond).Truncate(time.Second)
	deep := cfg.N - 1 - cfg.N*9/10
	batch := make([]*cloudimage.Image, 0, cfg.Batch)
	for i := range cfg.N {
		img := newImage(p.ID, base.Add(time.Duration(i)*time.Microsecond), rand.Float64() < cfg.Active)
		st.record(img, i <= deep)
		batch = append(batch, img)
		if len(batch) == cfg.Batch || i == cfg.N-1 {
			if err := db.InsertImages(ctx, batch); err != nil {
				return nil, fmt.Errorf("insert images: %w", err)
			}
			batch = batch[:0]
		}
	}
	st.SeedTime = time.Since(start).Seconds()
	rand.Shuffle(len(st.DeleteIDs), func(i, j int) {
		st.DeleteIDs[i], st.DeleteIDs[j] = st.DeleteIDs[j], st.DeleteIDs[i]
	})
	return st, writeJSON(cfg.State, st)
}

// record keeps img's ID where the state needs it: the deep marker is the
// last active image at or before the 90% position, or the first after it.
func (st *state) record(img *cloudimage.Image, beforeDeep bool) {
	if img.Status != cloudimage.StatusActive {
		if len(st.DeleteIDs) < maxDeleteIDs {
			st.DeleteIDs = append(st.DeleteIDs, img.ID)
		}
		return
	}
	if beforeDeep || st.DeepMarker == "" {
		st.DeepMarker = img.ID
	}
	if len(st.GetIDs) < maxGetIDs {
		st.GetIDs = append(st.GetIDs, img.ID)
	}
}

// newImage returns an image of owner created at t with a random name:
// active with tag x and 1 KiB of (absent) data, or queued.
func newImage(owner string, t time.Time, active bool) *cloudimage.Image {
	img := &cloudimage.Image{
		ID: uuid.NewString(), Name: "img-" + randomName(6),
		Status: cloudimage.StatusQueued, Visibility: cloudimage.VisibilityPrivate,
		DiskFormat: "qcow2", ContainerFormat: "bare", Owner: owner,
		Properties: map[string]string{}, CreatedAt: t, UpdatedAt: t,
	}
	if active {
		size := int64(1024)
		img.Status, img.Size, img.Tags = cloudimage.StatusActive, &size, []string{"x"}
		img.Checksum = strings.Repeat("0", 32)
		img.HashAlgo, img.HashValue = "sha512", strings.Repeat("0", 128)
	}
	return img
}

// randomName returns 2n random hex digits.
func randomName(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
	return hex.EncodeToString(b)
}

// writeJSON writes v to path, indented.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o600)
}

// readJSON reads path into v.
func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return nil
}
