package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cloudimage/cloudimage"
	"github.com/cloudimage/cloudimage/fsblob"
	"github.com/cloudimage/cloudimage/httpapi"
	"github.com/cloudimage/cloudimage/sqlite"
	"github.com/spf13/cobra"
)

// serveConfig is the effective configuration of "serve".
type serveConfig struct {
	DataDir   string
	Listen    string
	PublicURL string
	TokenTTL  time.Duration
	Region    string
	LogLevel  string
	LogFormat string

	ShutdownTimeout time.Duration

	Profile      string
	DefaultLimit int // 0: the profile's
	MaxLimit     int // 0: the profile's
	ImportHosts  []string
	MaxImageSize int64 // bytes; 0: cloudimage.DefaultMaxImageSize
}

func serveCommand(e *env, dataDir *string) *cobra.Command {
	var cfg serveConfig
	envErrs := map[string]error{} // by the flag that overrides the variable
	ttl, err := time.ParseDuration(e.or("CLOUDIMAGE_TOKEN_TTL", cloudimage.DefaultTokenTTL.String()))
	if err != nil {
		envErrs["token-ttl"] = fmt.Errorf("CLOUDIMAGE_TOKEN_TTL: %w", err)
	}
	envInt := func(name, flag string) int {
		v, err := strconv.Atoi(e.or(name, "0"))
		if err != nil {
			envErrs[flag] = fmt.Errorf("%s: not an integer: %w", name, err)
		}
		return v
	}
	defaultLimit := envInt("CLOUDIMAGE_DEFAULT_PAGE_SIZE", "default-page-size")
	maxLimit := envInt("CLOUDIMAGE_MAX_PAGE_SIZE", "max-page-size")
	maxImageSize := envInt("CLOUDIMAGE_MAX_IMAGE_SIZE", "max-image-size")
	var importHosts []string
	if v := e.getenv("CLOUDIMAGE_IMPORT_ALLOWED_HOSTS"); v != "" {
		importHosts = strings.Split(v, ",")
	}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the image service",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// A bad environment variable is an error when serve runs, not
			// a silent fall back to the default, unless its flag is given.
			var errs []error
			for _, flag := range slices.Sorted(maps.Keys(envErrs)) {
				if !cmd.Flags().Changed(flag) {
					errs = append(errs, envErrs[flag])
				}
			}
			if len(errs) > 0 {
				return errors.Join(errs...)
			}
			hosts, err := importHostList(cfg.ImportHosts)
			if err != nil {
				return err
			}
			cfg.ImportHosts = hosts
			cfg.DataDir = *dataDir
			return serve(cmd.Context(), e, cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Listen, "listen", e.or("CLOUDIMAGE_LISTEN", "127.0.0.1:9292"),
		"address to listen on (CLOUDIMAGE_LISTEN)")
	f.StringVar(&cfg.PublicURL, "public-url", e.or("CLOUDIMAGE_PUBLIC_URL", ""),
		"root URL clients reach the server at; default http://<listen address> (CLOUDIMAGE_PUBLIC_URL)")
	f.DurationVar(&cfg.TokenTTL, "token-ttl", ttl, "lifetime of issued tokens (CLOUDIMAGE_TOKEN_TTL)")
	f.StringVar(&cfg.Region, "region", e.or("CLOUDIMAGE_REGION", httpapi.DefaultRegion),
		"region named in token catalogs (CLOUDIMAGE_REGION)")
	f.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 30*time.Second,
		"how long a shutdown waits for requests in flight before cutting them")
	f.StringVar(&cfg.LogLevel, "log-level", e.or("CLOUDIMAGE_LOG_LEVEL", "info"),
		"debug, info, warn or error (CLOUDIMAGE_LOG_LEVEL)")
	f.StringVar(&cfg.LogFormat, "log-format", e.or("CLOUDIMAGE_LOG_FORMAT", "text"),
		"text or json (CLOUDIMAGE_LOG_FORMAT)")
	f.StringVar(&cfg.Profile, "profile", e.or("CLOUDIMAGE_PROFILE", cloudimage.ProfileNHN.Name),
		"API rules: nhn (NHN Cloud) or openstack (upstream Glance) (CLOUDIMAGE_PROFILE)")
	f.IntVar(&cfg.DefaultLimit, "default-page-size", defaultLimit,
		"images in a v2 list page that asks for no limit; 0 for the profile's, "+
			"capped by the maximum (CLOUDIMAGE_DEFAULT_PAGE_SIZE)")
	f.IntVar(&cfg.MaxLimit, "max-page-size", maxLimit,
		"most images in a v2 list page; 0 for the profile's (CLOUDIMAGE_MAX_PAGE_SIZE)")
	f.Int64Var(&cfg.MaxImageSize, "max-image-size", int64(maxImageSize),
		"most bytes of data one image may have; 0 for 1 TiB (CLOUDIMAGE_MAX_IMAGE_SIZE)")
	f.StringSliceVar(&cfg.ImportHosts, "import-allowed-hosts", importHosts,
		"hosts (name or host:port) web-download imports may fetch from; none disables web-download "+
			"(CLOUDIMAGE_IMPORT_ALLOWED_HOSTS)")
	return cmd
}

// setPageSizes puts the page sizes given into p; 0 keeps the profile's.
// A maximum below the profile's default lowers that default with it, but
// a default given above the maximum is an error.
func setPageSizes(p *cloudimage.Profile, def, most int) error {
	if def < 0 || most < 0 {
		return fmt.Errorf("page sizes must be positive, or 0 for the profile's: default %d, maximum %d", def, most)
	}
	if most != 0 {
		p.MaxLimit = most
	}
	switch {
	case def != 0:
		p.DefaultLimit = def
	case p.DefaultLimit > p.MaxLimit:
		p.DefaultLimit = p.MaxLimit
	}
	if p.DefaultLimit > p.MaxLimit {
		return fmt.Errorf("the default page size (%d) is above the maximum (%d)", p.DefaultLimit, p.MaxLimit)
	}
	return nil
}

// importHostList returns the web-download hosts given, trimmed and
// without empty entries; a URL or a path where a host belongs is an error.
func importHostList(given []string) ([]string, error) {
	var hosts []string
	for _, h := range given {
		h = strings.TrimSpace(h)
		switch {
		case h == "":
			continue
		case strings.ContainsAny(h, "/?#@ "):
			return nil, fmt.Errorf("import allowed hosts: %q is not a host or host:port", h)
		}
		hosts = append(hosts, h)
	}
	return hosts, nil
}

func newLogger(e *env, cfg serveConfig) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", cfg.LogLevel, err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch cfg.LogFormat {
	case "text":
		return slog.New(slog.NewTextHandler(e.stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(e.stderr, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: want text or json", cfg.LogFormat)
}

// dbFile is the name of the metadata database in the data directory.
const dbFile = "cloudimage.db"

// openDatabase opens the metadata database under dataDir.
func openDatabase(ctx context.Context, dataDir string) (*sqlite.DB, error) {
	// The database holds password and token hashes: for the owner only.
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	return sqlite.Open(ctx, filepath.Join(dataDir, dbFile))
}

// openStores opens the metadata database and the blob store under dataDir.
func openStores(ctx context.Context, dataDir string) (*sqlite.DB, *fsblob.Store, error) {
	db, err := openDatabase(ctx, dataDir)
	if err != nil {
		return nil, nil, err
	}
	blobs, err := fsblob.Open(filepath.Join(dataDir, "images"))
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return db, blobs, nil
}

func serve(ctx context.Context, e *env, cfg serveConfig) error {
	logger, err := newLogger(e, cfg)
	if err != nil {
		return err
	}
	if cfg.TokenTTL <= 0 {
		return fmt.Errorf("token TTL must be positive, not %s", cfg.TokenTTL)
	}
	if cfg.MaxImageSize < 0 {
		return fmt.Errorf("max image size must not be negative, not %d", cfg.MaxImageSize)
	}
	profile, err := cloudimage.ProfileByName(cfg.Profile)
	if err != nil {
		return err
	}
	if err := setPageSizes(&profile, cfg.DefaultLimit, cfg.MaxLimit); err != nil {
		return err
	}
	db, blobs, err := openStores(ctx, cfg.DataDir)
	if err != nil {
		return err
	}
	defer db.Close()

	identity := cloudimage.NewIdentityService(db, cfg.TokenTTL)
	adminPassword := e.getenv("CLOUDIMAGE_ADMIN_PASSWORD")
	boot, err := identity.Bootstrap(ctx, adminPassword)
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	if boot != nil {
		printBootstrap(e, boot, adminPassword != "")
	}

	images := cloudimage.NewImageService(db, blobs, logger.With("component", "images"),
		cloudimage.WithProfile(profile), cloudimage.WithImportHosts(cfg.ImportHosts...),
		cloudimage.WithMaxImageSize(cfg.MaxImageSize))
	// Imports in the background stop before the database closes.
	defer images.Close()
	if _, err := images.RecoverUploads(ctx); err != nil {
		return fmt.Errorf("recover interrupted uploads: %w", err)
	}
	srv := httpapi.New(httpapi.Config{
		Images:    images,
		Identity:  identity,
		PublicURL: cfg.PublicURL,
		Region:    cfg.Region,
		Logger:    logger.With("component", "http"),
		Checks:    []httpapi.Check{{Name: "database", Ping: db.Ping}, {Name: "images", Ping: blobs.Ping}},
	})
	if err := srv.Open(cfg.Listen); err != nil {
		return err
	}
	cfg.PublicURL = srv.PublicURL()
	logger.Info("config", "data_dir", cfg.DataDir, "listen", cfg.Listen, "public_url", cfg.PublicURL,
		"token_ttl", cfg.TokenTTL, "shutdown_timeout", cfg.ShutdownTimeout, "region", cfg.Region,
		"log_level", cfg.LogLevel,
		"profile", profile.Name, "default_page_size", profile.DefaultLimit, "max_page_size", profile.MaxLimit,
		"import_allowed_hosts", strings.Join(cfg.ImportHosts, ","), "max_image_size", cfg.MaxImageSize,
		"admin_password_from_env", adminPassword != "")
	logger.Info("listening", "addr", srv.Addr().String())

	go purgeTokens(ctx, identity, logger)
	<-ctx.Done()
	logger.Info("shutting down")
	shutdown, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	return srv.Close(shutdown)
}

func printBootstrap(e *env, b *cloudimage.Bootstrap, fromEnv bool) {
	pw := b.Password
	if fromEnv {
		pw = "(from CLOUDIMAGE_ADMIN_PASSWORD)"
	}
	fmt.Fprintf(e.stdout, strings.TrimLeft(`
Created the admin project and user. This is shown only once: keep it.
  tenant id: %s
  appkey:    %s
  username:  %s
  password:  %s
`, "\n"), b.Project.ID, b.Project.AppKey, b.User.Name, pw)
}

// purgeTokens removes expired tokens every hour until ctx is done.
func purgeTokens(ctx context.Context, identity *cloudimage.IdentityService, logger *slog.Logger) {
	tick := time.NewTicker(time.Hour)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if n, err := identity.PurgeExpiredTokens(ctx); err != nil {
				logger.Error("purge expired tokens", "err", err)
			} else if n > 0 {
				logger.Info("purged expired tokens", "count", n)
			}
		}
	}
}
