// Command ferretdb runs FerretDB through its embeddable package.
//
// FerretDB's own cmd/ferretdb panics at start-up unless the build generated
// build/version/version.txt, which a module download never has. Its embeddable
// package (github.com/FerretDB/FerretDB/ferretdb) skips that check when the main
// module is not FerretDB itself, so this small main is ours.
//
// The flags mirror FerretDB's own; telemetry is always off (the embeddable
// package never reports it), and flags we do not need are accepted and ignored
// so that scripts written for the upstream binary keep working.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	_ "net/http/pprof" // profiles on --debug-addr
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	handler := flag.String("handler", "sqlite", "backend handler: sqlite or postgresql")
	sqliteURL := flag.String("sqlite-url", "file:data/", "SQLite URI (a directory that exists, ending in /)")
	postgresqlURL := flag.String("postgresql-url", "", "PostgreSQL URL for the postgresql handler")
	listenAddr := flag.String("listen-addr", "127.0.0.1:27017", "TCP address to listen on")
	logLevel := flag.String("log-level", "warn", "debug, info, warn or error")
	idIndexEvery := flag.Duration("id-index-interval", 500*time.Millisecond,
		"how often to add the missing _id expression indexes to SQLite tables (0: never; see idindex.go)")
	// Accepted for compatibility with the upstream binary; the embeddable package needs none.
	flag.String("telemetry", "disable", "ignored: telemetry is always disabled")
	flag.String("state-dir", "-", "ignored")
	debugAddr := flag.String("debug-addr", "-",
		"serve Go's profiler (net/http/pprof) on this address, e.g. 127.0.0.1:6060; - for none")
	flag.Parse()

	var level slog.Level
	if err := level.UnmarshalText([]byte(strings.ToLower(*logLevel))); err != nil {
		fmt.Fprintf(os.Stderr, "bad --log-level: %v\n", err)
		os.Exit(2)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:      ferretdb.ListenerConfig{TCP: *listenAddr},
		Logger:        logger,
		Handler:       *handler,
		SQLiteURL:     *sqliteURL,
		PostgreSQLURL: *postgresqlURL,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb: %v\n", err)
		os.Exit(1)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	logger.Info("listening", "addr", *listenAddr, "handler", *handler)
	if *debugAddr != "-" && *debugAddr != "" {
		go func() {
			logger.Info("profiler listening", "addr", *debugAddr)
			if err := http.ListenAndServe(*debugAddr, nil); err != nil {
				logger.Warn("profiler stopped", "error", err)
			}
		}()
	}
	if *handler == "sqlite" && *idIndexEvery > 0 {
		go indexIDs(ctx, dataDir(*sqliteURL), *idIndexEvery, logger)
	}
	if err := f.Run(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb: %v\n", err)
		os.Exit(1)
	}
}
