package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ephem-dev/ephem/pkg/audit"
	"github.com/ephem-dev/ephem/pkg/record"
	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/session"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// auditOptions are the global flags of the audit log and of recording.
// Config files set their defaults (audit.log, audit.enabled, record.dir).
type auditOptions struct {
	// Log is the audit log's path ("": audit.DefaultPath()).
	Log string
	// Disabled turns the audit log off.
	Disabled bool
	// RecordDir, when set, records every terminal session into it.
	RecordDir string
}

func (a *auditOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&a.Log, "audit-log", os.Getenv("EPHEM_AUDIT_LOG"), "append a JSON line per debug or attach session to this file (env EPHEM_AUDIT_LOG; default /var/log/ephem/audit.jsonl for root, else ~/.local/state/ephem/audit.jsonl)")
	fs.BoolVar(&a.Disabled, "no-audit", os.Getenv("EPHEM_NO_AUDIT") == "1", "write no audit record (env EPHEM_NO_AUDIT=1)")
	fs.StringVar(&a.RecordDir, "record-dir", os.Getenv("EPHEM_RECORD_DIR"), "record every terminal (-t) session into this directory as an asciicast file (env EPHEM_RECORD_DIR)")
}

// path is the audit log's path.
func (a *auditOptions) path() string {
	if a.Log != "" {
		return a.Log
	}
	return audit.DefaultPath()
}

// recordFlags are debug's and attach's recording flags.
type recordFlags struct {
	File  string
	Input bool
}

func (r *recordFlags) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&r.File, "record", "", "record the terminal session to FILE as an asciicast v2 file (asciinema play FILE replays it; needs -t)")
	fs.BoolVar(&r.Input, "record-input", false, "record the keys typed too (passwords included: mind who reads the file)")
}

// check rejects recording flags on a session without a terminal.
func (r *recordFlags) check(tty bool) error {
	switch {
	case r.File != "" && !tty:
		return usageError("--record records a terminal session: add -it")
	case r.Input && r.File == "" && !tty:
		return usageError("--record-input needs --record FILE and -it")
	}
	return nil
}

// sessionInfo is what the CLI knows of a session before it starts.
type sessionInfo struct {
	verb, backend, target, image, profile string
	command                               []string
	tty                                   bool
	record                                recordFlags
}

// runSession runs a debug or attach session through run: recorded when
// asked, timed, and written to the audit log with the exit code ephem
// returns. A failure to write the log or the recording is a warning: the
// session's exit code stays the command's.
func (g *GlobalOptions) runSession(ctx context.Context, info sessionInfo, run func(context.Context, session.Streams) error) error {
	rep := &runtime.SessionReport{}
	ctx = runtime.WithReport(ctx, rep)
	rec := audit.Record{Time: time.Now().UTC(), Verb: info.verb, Backend: info.backend, Target: info.target,
		Image: info.image, Profile: info.profile, Command: info.command, TTY: info.tty}
	if rec.Command == nil {
		rec.Command = []string{}
	}
	streams := g.Streams
	cast, err := g.startRecording(info)
	if err != nil {
		return err
	}
	if cast != nil {
		rec.Recording = cast.path
		streams = record.Streams(streams, cast.r, info.record.Input)
	}
	err = run(ctx, streams)
	if cast != nil {
		if cerr := cast.r.Close(); cerr != nil {
			fmt.Fprintf(g.Streams.Err, "warning: recording %s: %v\n", cast.path, cerr)
		}
		// A session that failed before it showed anything leaves no file.
		if err != nil && cast.r.Empty() && os.Remove(cast.path) == nil {
			cast.path = ""
		}
		rec.Recording = cast.path
	}
	if g.audit.Disabled {
		return err
	}
	rec.DurationMS = time.Since(rec.Time).Milliseconds()
	rec.ResolvedTarget, rec.ImageDigest, rec.SessionID = rep.Values()
	rec.ExitCode = exitCodeFor(err)
	var exit *runtime.ExitError
	if err != nil && (!errors.As(err, &exit) || exit.Err != nil) {
		rec.Error = message(err)
	}
	audit.Caller(&rec)
	if aerr := audit.Append(g.audit.path(), rec); aerr != nil {
		fmt.Fprintf(g.Streams.Err, "warning: %v (the session is not in the audit log)\n", aerr)
	}
	return err
}

type recording struct {
	path string
	r    *record.Recorder
}

// startRecording opens the session's recording: --record FILE, or a new
// file in the record directory for a terminal session; nil when neither.
func (g *GlobalOptions) startRecording(info sessionInfo) (*recording, error) {
	path := info.record.File
	if path == "" && g.audit.RecordDir != "" && info.tty {
		if err := os.MkdirAll(g.audit.RecordDir, 0o700); err != nil {
			fmt.Fprintf(g.Streams.Err, "warning: not recording: creating %s: %v\n", g.audit.RecordDir, err)
			return nil, nil
		}
		name := fmt.Sprintf("%s-%s-%d.cast", info.verb, time.Now().UTC().Format("20060102T150405Z"), os.Getpid())
		path = filepath.Join(g.audit.RecordDir, name)
	}
	if path == "" {
		return nil, nil
	}
	rows, cols, ok := session.Size(g.Streams.Out)
	if !ok {
		rows, cols = 24, 80
	}
	h := record.Header{Width: int(cols), Height: int(rows), Command: strings.Join(info.command, " "),
		Title: "ephem " + info.verb + " " + info.target,
		Env:   map[string]string{"SHELL": os.Getenv("SHELL"), "TERM": os.Getenv("TERM")}}
	r, err := record.Create(path, h)
	if err != nil {
		if info.record.File != "" {
			return nil, fmt.Errorf("%w: --record %s: %w", errUsage, path, err)
		}
		fmt.Fprintf(g.Streams.Err, "warning: not recording: %v\n", err)
		return nil, nil
	}
	return &recording{path: path, r: r}, nil
}

func newAuditCmd(g *GlobalOptions) *cobra.Command {
	var since, output string
	cmd := &cobra.Command{
		Use:   "audit [--since 1h] [-o table|json]",
		Short: "Show the audit log: one entry per debug or attach session",
		Long: `Show the audit log: who ran which debug or attach session, on what target
and image, for how long, and its exit code. The log is --audit-log
(default /var/log/ephem/audit.jsonl for root, else
~/.local/state/ephem/audit.jsonl); its rotated part, FILE.1, is read first.`,
		Example: `  ephem audit --since 24h
  ephem audit -o json | jq 'select(.exit_code != 0)'`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			from, err := parseSince(since, time.Now())
			if err != nil {
				return err
			}
			if output != "table" && output != "json" {
				return usageError("-o %q: use table or json", output)
			}
			recs, bad, err := audit.Read(g.audit.path(), from)
			if err != nil {
				return fmt.Errorf("%w: %w", runtime.ErrOS, err)
			}
			if bad > 0 {
				fmt.Fprintf(g.Streams.Err, "warning: %s: skipped %d lines that do not parse\n", g.audit.path(), bad)
			}
			if output == "json" {
				return printAuditJSON(g, recs)
			}
			return printAuditTable(g, recs)
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "only sessions that started within this duration (such as 30m, 24h, 7d) or since this RFC 3339 time")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}

// parseSince reads --since: a duration back from now (days as "7d") or an
// RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(d); err == nil && n >= 0 {
			return now.AddDate(0, 0, -n), nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, usageError("--since %q: give a duration such as 1h or 7d, or a time such as 2026-01-02T15:04:05Z", s)
	}
	return now.Add(-d), nil
}

func printAuditJSON(g *GlobalOptions, recs []audit.Record) error {
	if recs == nil {
		recs = []audit.Record{}
	}
	enc := json.NewEncoder(g.Streams.Out)
	enc.SetIndent("", "  ")
	return enc.Encode(recs)
}

func printAuditTable(g *GlobalOptions, recs []audit.Record) error {
	tw := tabwriter.NewWriter(g.Streams.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tUSER\tVERB\tTARGET\tRESOLVED\tIMAGE\tEXIT\tDURATION\tCOMMAND")
	for _, r := range recs {
		who := r.User
		if who == "" {
			who = strconv.Itoa(r.UID)
		}
		if r.SudoUser != "" {
			who += " (sudo " + r.SudoUser + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", r.Time.Local().Format(time.DateTime), dash(who), r.Verb,
			dash(r.Target), dash(r.ResolvedTarget), dash(r.Image), r.ExitCode,
			(time.Duration(r.DurationMS) * time.Millisecond).String(), dash(strings.Join(r.Command, " ")))
	}
	return tw.Flush()
}

// dash is s for a table cell: "-" when empty, control characters (a
// command's escape sequences) shown as "?".
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return '?'
		}
		return r
	}, s)
}
