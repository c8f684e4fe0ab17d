package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Timeouts of the HTTP server run by Serve.
const (
	// ReadHeaderTimeout bounds reading a request's headers (slowloris).
	ReadHeaderTimeout = 10 * time.Second
	// ReadTimeout bounds reading a whole request, body included.
	ReadTimeout = time.Minute
	// WriteTimeout bounds writing a response. Streaming handlers (SSE,
	// rollout logs) extend it with http.ResponseController.SetWriteDeadline.
	WriteTimeout = 2 * time.Minute
	// IdleTimeout closes idle keep-alive connections.
	IdleTimeout = 2 * time.Minute
	// ShutdownTimeout is how long Serve waits for in-flight requests once
	// its context ends.
	ShutdownTimeout = 30 * time.Second
)

// Serve listens on addr and serves h until ctx ends, then shuts down
// gracefully: it stops accepting connections and waits up to
// ShutdownTimeout for in-flight requests. It returns nil after a clean
// shutdown. The caller ties ctx to SIGINT/SIGTERM (signal.NotifyContext).
func Serve(ctx context.Context, addr string, h http.Handler, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	return serve(ctx, ln, h, log, ShutdownTimeout)
}

// serve serves h on ln until ctx ends; it closes ln.
func serve(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger, shutdownTimeout time.Duration) error {
	if log == nil {
		log = slog.Default()
	}
	closing := make(chan struct{})
	var closeOnce sync.Once
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext: func(net.Listener) context.Context {
			return context.WithValue(context.WithoutCancel(ctx), shutdownKey{}, (<-chan struct{})(closing))
		},
	}
	// Streams (rollout logs, runtime logs) end when shutdown begins;
	// ordinary requests in flight are left to finish.
	srv.RegisterOnShutdown(func() { closeOnce.Do(func() { close(closing) }) })
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String())

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		srv.Close()
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("server stopped")
	return nil
}

type shutdownKey struct{}

// streamContext returns a context for a long-lived response (SSE): it ends
// with the request, and also when the server begins a graceful shutdown,
// so that open streams close instead of holding the shutdown up.
func streamContext(r *http.Request) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(r.Context())
	if closing, ok := r.Context().Value(shutdownKey{}).(<-chan struct{}); ok {
		go func() {
			select {
			case <-closing:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	return ctx, cancel
}
