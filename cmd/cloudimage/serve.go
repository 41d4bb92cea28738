package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cloudimage/cloudimage"
	"github.com/cloudimage/cloudimage/httpapi"
	"github.com/cloudimage/cloudimage/sqlite"
	"github.com/spf13/cobra"
)

// serveConfig is the effective configuration of "serve".
type serveConfig struct {
	DataDir   string
	Listen    string
	PublicURL string

	// DebugListen is where pprof is served, apart from the API; empty: nowhere.
	DebugListen string

	TokenTTL  time.Duration
	Region    string
	LogLevel  string
	LogFormat string

	ShutdownTimeout time.Duration
	DBBusyTimeout   time.Duration // how long a write waits for a locked SQLite database, then 503

	Database    string // see parseDatabase; empty: the SQLite file in DataDir
	Blob        string // see parseBlob; empty: the directory images in DataDir
	ReplicaName string // names this replica among those sharing the database

	Profile      string
	DefaultLimit int // 0: the profile's
	MaxLimit     int // 0: the profile's
	ImportHosts  []string
	MaxImageSize int64             // bytes; 0: cloudimage.DefaultMaxImageSize
	Quotas       cloudimage.Quotas // of every project; 0: no limit

	RequireFormatMatch bool // refuse data that is not in its disk_format

	Lifecycle lifecycleConfig // delayed delete, the scrubber, the orphan sweep

	TLSCert, TLSKey string // PEM files; both or neither

	// PageCacheBytes bounds the cache of list responses, TokenCache the
	// number of validated tokens kept; 0 for either: none.
	PageCacheBytes int
	TokenCache     int

	// Failed token requests a user or client address may make in a row,
	// then one more each interval; 0 for either: no limit.
	AuthFailureBurst    int
	AuthFailureInterval time.Duration
}

func serveCommand(e *env, dataDir *string) *cobra.Command {
	var cfg serveConfig
	envErrs := map[string]error{} // by the flag that overrides the variable
	ttl, err := time.ParseDuration(e.or("CLOUDIMAGE_TOKEN_TTL", cloudimage.DefaultTokenTTL.String()))
	if err != nil {
		envErrs["token-ttl"] = fmt.Errorf("CLOUDIMAGE_TOKEN_TTL: %w", err)
	}
	// envInt is the integer the variable name holds, def when it is unset;
	// a value that is not an integer is an error of flag's.
	envInt := func(name, flag string, def int) int {
		v, err := strconv.Atoi(e.or(name, strconv.Itoa(def)))
		if err != nil {
			envErrs[flag] = fmt.Errorf("%s: not an integer: %w", name, err)
			return def
		}
		return v
	}
	defaultLimit := envInt("CLOUDIMAGE_DEFAULT_PAGE_SIZE", "default-page-size", 0)
	maxLimit := envInt("CLOUDIMAGE_MAX_PAGE_SIZE", "max-page-size", 0)
	maxImageSize := envInt("CLOUDIMAGE_MAX_IMAGE_SIZE", "max-image-size", 0)
	quotaImages := envInt("CLOUDIMAGE_QUOTA_IMAGES", "quota-images", 0)
	quotaBytes := envInt("CLOUDIMAGE_QUOTA_BYTES", "quota-bytes", 0)
	pageCache := envInt("CLOUDIMAGE_PAGE_CACHE", "page-cache", httpapi.DefaultPageCacheBytes)
	tokenCache := envInt("CLOUDIMAGE_TOKEN_CACHE", "token-cache", cloudimage.DefaultTokenCacheSize)
	authBurst := envInt("CLOUDIMAGE_AUTH_FAILURE_BURST", "auth-failure-burst", cloudimage.DefaultAuthFailureBurst)
	requireMatch, err := strconv.ParseBool(e.or("CLOUDIMAGE_REQUIRE_FORMAT_MATCH", "true"))
	if err != nil {
		envErrs["require-format-match"] = fmt.Errorf("CLOUDIMAGE_REQUIRE_FORMAT_MATCH: not a boolean: %w", err)
	}
	authInterval, err := time.ParseDuration(e.or("CLOUDIMAGE_AUTH_FAILURE_INTERVAL",
		cloudimage.DefaultAuthFailureInterval.String()))
	if err != nil {
		authInterval = cloudimage.DefaultAuthFailureInterval
		envErrs["auth-failure-interval"] = fmt.Errorf("CLOUDIMAGE_AUTH_FAILURE_INTERVAL: %w", err)
	}
	busyTimeout, err := time.ParseDuration(e.or("CLOUDIMAGE_DB_BUSY_TIMEOUT", sqlite.DefaultBusyTimeout.String()))
	if err != nil {
		busyTimeout = sqlite.DefaultBusyTimeout
		envErrs["db-busy-timeout"] = fmt.Errorf("CLOUDIMAGE_DB_BUSY_TIMEOUT: %w", err)
	}
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
	f.StringVar(&cfg.DebugListen, "debug-listen", e.or("CLOUDIMAGE_DEBUG_LISTEN", ""),
		"address (host:port, the host required) to serve net/http/pprof on, apart from the API; "+
			"it exposes the process's internals, so keep it on loopback; empty for none (CLOUDIMAGE_DEBUG_LISTEN)")
	f.StringVar(&cfg.PublicURL, "public-url", e.or("CLOUDIMAGE_PUBLIC_URL", ""),
		"root URL clients reach the server at; default http://<listen address>, https:// with TLS "+
			"(CLOUDIMAGE_PUBLIC_URL)")
	f.DurationVar(&cfg.TokenTTL, "token-ttl", ttl, "lifetime of issued tokens (CLOUDIMAGE_TOKEN_TTL)")
	f.StringVar(&cfg.Region, "region", e.or("CLOUDIMAGE_REGION", httpapi.DefaultRegion),
		"region named in token catalogs (CLOUDIMAGE_REGION)")
	f.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 30*time.Second,
		"how long a shutdown waits for requests in flight before cutting them")
	f.DurationVar(&cfg.DBBusyTimeout, "db-busy-timeout", busyTimeout,
		"how long a database write waits for a lock another process holds before it fails with 503 "+
			"(SQLite's busy timeout, PostgreSQL's lock_timeout unless the DSN sets one) (CLOUDIMAGE_DB_BUSY_TIMEOUT)")
	databaseFlag(cmd, e, &cfg.Database)
	blobFlag(cmd, e, &cfg.Blob)
	f.StringVar(&cfg.ReplicaName, "replica-name", e.or("CLOUDIMAGE_REPLICA_NAME", ""),
		"names this replica among those sharing a database, in the leases it holds on uploads and imports: "+
			"unique to each replica running at once, kept across its restarts; default <host name>/<--listen> "+
			"(CLOUDIMAGE_REPLICA_NAME)")
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
	f.IntVar(&cfg.Quotas.Images, "quota-images", quotaImages,
		"most images each project may have that are not deleted; 0 for no limit (CLOUDIMAGE_QUOTA_IMAGES)")
	f.Int64Var(&cfg.Quotas.Bytes, "quota-bytes", int64(quotaBytes),
		"most bytes of image data, staged data included, each project may hold; 0 for no limit "+
			"(CLOUDIMAGE_QUOTA_BYTES)")
	f.StringSliceVar(&cfg.ImportHosts, "import-allowed-hosts", importHosts,
		"hosts (name or host:port) web-download imports may fetch from; none disables web-download "+
			"(CLOUDIMAGE_IMPORT_ALLOWED_HOSTS)")
	f.BoolVar(&cfg.RequireFormatMatch, "require-format-match", requireMatch,
		"refuse image data whose format, as its header shows, is not its disk_format "+
			"(CLOUDIMAGE_REQUIRE_FORMAT_MATCH)")
	f.StringVar(&cfg.TLSCert, "tls-cert", e.or("CLOUDIMAGE_TLS_CERT", ""),
		"PEM certificate file (chain included) to serve HTTPS with; needs --tls-key (CLOUDIMAGE_TLS_CERT)")
	f.StringVar(&cfg.TLSKey, "tls-key", e.or("CLOUDIMAGE_TLS_KEY", ""),
		"PEM private key file of --tls-cert (CLOUDIMAGE_TLS_KEY)")
	f.IntVar(&cfg.PageCacheBytes, "page-cache", pageCache,
		"bytes of list responses kept in memory, each valid until anything in the database changes; "+
			"0 for none (CLOUDIMAGE_PAGE_CACHE)")
	f.IntVar(&cfg.TokenCache, "token-cache", tokenCache,
		"validated tokens kept in memory, each valid until anything in the database changes; "+
			"0 for none (CLOUDIMAGE_TOKEN_CACHE)")
	f.IntVar(&cfg.AuthFailureBurst, "auth-failure-burst", authBurst,
		"failed token requests a user name or client address may make before it is refused with 429; "+
			"0 for no limit (CLOUDIMAGE_AUTH_FAILURE_BURST)")
	f.DurationVar(&cfg.AuthFailureInterval, "auth-failure-interval", authInterval,
		"after the burst, one more token request is allowed each interval; 0 for no limit "+
			"(CLOUDIMAGE_AUTH_FAILURE_INTERVAL)")
	addLifecycleFlags(cmd, e, envErrs, &cfg.Lifecycle)
	return cmd
}

// cacheSize is the size of a cache of n over versions: none without them.
func cacheSize(versions cloudimage.Versioner, n int) int {
	if versions == nil {
		return 0
	}
	return n
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

// openStores opens the metadata database, an SQLite one with busy as
// its busy timeout, and the blob store.
func openStores(ctx context.Context, dbb databaseBackend, bb blobBackend, busy time.Duration) (metadata, blobs, error) {
	db, err := dbb.open(ctx, busy)
	if err != nil {
		return nil, nil, err
	}
	store, err := bb.open(ctx)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return db, store, nil
}

// replicaName returns the name configured, or one made of the host's
// name and the listen address: two replicas on one host cannot listen on
// one address, unless on port 0, and a restart listens where it did.
func replicaName(cfg serveConfig) string {
	if cfg.ReplicaName != "" {
		return cfg.ReplicaName
	}
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	return host + "/" + cfg.Listen
}

func serve(ctx context.Context, e *env, cfg serveConfig) error {
	logger, err := newLogger(e, cfg)
	if err != nil {
		return err
	}
	if cfg.TokenTTL <= 0 {
		return fmt.Errorf("token TTL must be positive, not %s", cfg.TokenTTL)
	}
	if cfg.DBBusyTimeout <= 0 {
		return fmt.Errorf("database busy timeout must be positive, not %s", cfg.DBBusyTimeout)
	}
	if cfg.MaxImageSize < 0 {
		return fmt.Errorf("max image size must not be negative, not %d", cfg.MaxImageSize)
	}
	if cfg.AuthFailureBurst < 0 || cfg.AuthFailureInterval < 0 {
		return fmt.Errorf("auth failure burst and interval must not be negative, not %d and %s",
			cfg.AuthFailureBurst, cfg.AuthFailureInterval)
	}
	tlsConfig, err := loadTLS(cfg.TLSCert, cfg.TLSKey)
	if err != nil {
		return err
	}
	if cfg.PageCacheBytes < 0 || cfg.TokenCache < 0 {
		return fmt.Errorf("cache sizes must not be negative, not %d bytes and %d tokens", cfg.PageCacheBytes, cfg.TokenCache)
	}
	if cfg.Quotas.Images < 0 || cfg.Quotas.Bytes < 0 {
		return fmt.Errorf("quotas must not be negative, not %d images and %d bytes",
			cfg.Quotas.Images, cfg.Quotas.Bytes)
	}
	if err := cfg.Lifecycle.check(); err != nil {
		return err
	}
	if cfg.DebugListen != "" {
		if _, err := checkDebugAddr(cfg.DebugListen); err != nil {
			return err
		}
	}
	profile, err := cloudimage.ProfileByName(cfg.Profile)
	if err != nil {
		return err
	}
	if err := setPageSizes(&profile, cfg.DefaultLimit, cfg.MaxLimit); err != nil {
		return err
	}
	dbb, err := parseDatabase(cfg.Database, cfg.DataDir)
	if err != nil {
		return err
	}
	bb, err := parseBlob(cfg.Blob, cfg.DataDir)
	if err != nil {
		return err
	}
	db, blobs, err := openStores(ctx, dbb, bb, cfg.DBBusyTimeout)
	if err != nil {
		return err
	}
	defer db.Close()
	replica := replicaName(cfg)

	// Caches need the database's change counter; both SQL stores have one.
	versions, _ := db.(cloudimage.Versioner)
	identity := cloudimage.NewIdentityService(db, cfg.TokenTTL,
		cloudimage.WithAuthFailureLimit(cfg.AuthFailureBurst, cfg.AuthFailureInterval),
		cloudimage.WithTokenCache(versions, cfg.TokenCache))
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
		cloudimage.WithMaxImageSize(cfg.MaxImageSize), cloudimage.WithQuotas(cfg.Quotas),
		cloudimage.WithRequireFormatMatch(cfg.RequireFormatMatch), cfg.Lifecycle.deleteOption(),
		cloudimage.WithTransferLeases(db, replica, 0))
	// Imports in the background stop before the database closes.
	defer images.Close()
	if _, err := images.RecoverUploads(ctx); err != nil {
		return fmt.Errorf("recover interrupted uploads: %w", err)
	}
	if err := sweepAtStart(ctx, images, cfg.Lifecycle); err != nil {
		return err
	}
	srv := httpapi.New(httpapi.Config{
		Images:    images,
		Identity:  identity,
		PublicURL: cfg.PublicURL,
		TLS:       tlsConfig,
		Region:    cfg.Region,
		Logger:    logger.With("component", "http"),
		Checks:    []httpapi.Check{{Name: "database", Ping: db.Ping}, {Name: "images", Ping: blobs.Ping}},

		Versions:       versions,
		PageCacheBytes: cfg.PageCacheBytes,
	})
	if err := srv.Open(cfg.Listen); err != nil {
		return err
	}
	cfg.PublicURL = srv.PublicURL()
	var debug *debugServer
	if cfg.DebugListen != "" {
		if debug, err = startDebug(cfg.DebugListen, logger.With("component", "debug")); err != nil {
			srv.Close(ctx)
			return err
		}
	}
	logger.Info("config", "data_dir", cfg.DataDir, "database", dbb.String(), "blob", bb.String(),
		"replica_name", replica, "listen", cfg.Listen, "debug_listen", cfg.DebugListen, "public_url", cfg.PublicURL,
		"token_ttl", cfg.TokenTTL, "shutdown_timeout", cfg.ShutdownTimeout, "region", cfg.Region,
		"db_busy_timeout", cfg.DBBusyTimeout, "page_cache", cacheSize(versions, cfg.PageCacheBytes),
		"token_cache", cacheSize(versions, cfg.TokenCache),
		"log_level", cfg.LogLevel,
		"profile", profile.Name, "default_page_size", profile.DefaultLimit, "max_page_size", profile.MaxLimit,
		"import_allowed_hosts", strings.Join(cfg.ImportHosts, ","), "max_image_size", cmp.Or(cfg.MaxImageSize, cloudimage.DefaultMaxImageSize),
		"quota_images", cfg.Quotas.Images, "quota_bytes", cfg.Quotas.Bytes,
		"require_format_match", cfg.RequireFormatMatch,
		cfg.Lifecycle.logAttrs(),
		"tls_cert", cfg.TLSCert, "tls_key", cfg.TLSKey,
		"auth_failure_burst", cfg.AuthFailureBurst, "auth_failure_interval", cfg.AuthFailureInterval,
		"admin_password_from_env", adminPassword != "")
	logger.Info("listening", "addr", srv.Addr().String())

	stopJanitor := startJanitor(ctx, images, db, cfg.Lifecycle, logger.With("component", "janitor"))
	defer stopJanitor() // before the service and the database close
	go purgeTokens(ctx, identity, logger)
	<-ctx.Done()
	logger.Info("shutting down")
	shutdown, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if debug != nil {
		if err := debug.Close(shutdown); err != nil {
			logger.Warn("close the debug listener", "err", err)
		}
	}
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
