package results

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// Store persists a run. Each measurement is appended to measurements.jsonl
// and fsynced, and results.json is rewritten atomically (temp file, fsync,
// rename), so a run killed at any point leaves a valid document holding
// every measurement that finished.
type Store struct {
	mu   sync.Mutex
	dir  string
	doc  Document
	log  *os.File
	path string
}

// FileMode is the mode of every file in a run directory: readable by all,
// so a user can rank or diff the results of a run made with sudo.
const FileMode = 0o644

// CreateFile creates (or truncates) a run file with FileMode, whatever the
// umask.
func CreateFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, FileMode)
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(FileMode); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Create starts a new run directory.
func Create(dir string, run Run) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	log, err := os.OpenFile(filepath.Join(dir, LogFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, FileMode)
	if err != nil {
		return nil, err
	}
	s := &Store{dir: dir, log: log, path: filepath.Join(dir, "results.json"),
		doc: Document{Schema: Schema, Run: run, Labs: []Lab{}, Measurements: []Measurement{}, Summaries: []Summary{}}}
	if err := s.flushLocked(); err != nil {
		log.Close()
		return nil, err
	}
	return s, nil
}

// Path is the results.json file.
func (s *Store) Path() string { return s.path }

// Dir is the run directory.
func (s *Store) Dir() string { return s.dir }

// SetLab records or replaces a lab's entry; a lab is its name on its
// provider (flannel on netns and flannel on kind are two labs).
func (s *Store) SetLab(l Lab) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.doc.Labs {
		if s.doc.Labs[i].Name == l.Name && s.doc.Labs[i].Provider == l.Provider {
			s.doc.Labs[i] = l
			return s.flushLocked()
		}
	}
	s.doc.Labs = append(s.doc.Labs, l)
	return s.flushLocked()
}

// SetRun replaces the run's description (provisioning times, ...).
func (s *Store) SetRun(run Run) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.doc.Run = run
	return s.flushLocked()
}

// Append records one finished measurement durably.
func (s *Store) Append(m Measurement) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	line, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if _, err := s.log.Write(append(line, '\n')); err != nil {
		return err
	}
	if err := s.log.Sync(); err != nil {
		return err
	}
	s.doc.Measurements = append(s.doc.Measurements, m)
	return s.flushLocked()
}

// Finish stores summaries and the run's end.
func (s *Store) Finish(sums []Summary, run Run) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.doc.Summaries = sums
	s.doc.Run = run
	return s.flushLocked()
}

// SetFidelity stores the model-vs-real section (FidelityCheck).
func (s *Store) SetFidelity(fc *FidelityCheck) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.doc.Fidelity = fc
	return s.flushLocked()
}

// Document returns a copy of the document so far.
func (s *Store) Document() Document {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.doc
	d.Labs = append([]Lab(nil), s.doc.Labs...)
	d.Measurements = append([]Measurement(nil), s.doc.Measurements...)
	d.Summaries = append([]Summary(nil), s.doc.Summaries...)
	return d
}

// Close closes the measurement log.
func (s *Store) Close() error { return s.log.Close() }

func (s *Store) flushLocked() error {
	data, err := json.MarshalIndent(s.doc, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(s.dir, ".results-*.json")
	if err != nil {
		return err
	}
	// CreateTemp makes 0600 files; results.json is read like its siblings.
	if err := tmp.Chmod(FileMode); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), s.path); err != nil {
		return fmt.Errorf("replace %s: %w", s.path, err)
	}
	return nil
}

// LogFile is the name of the measurement log in a run directory.
const LogFile = "measurements.jsonl"

// ReadLog reads a run's measurement log. Append writes each line with its
// newline in one write and fsyncs it, so a kill in the middle of a write
// leaves a last line without its newline: that line is dropped and torn
// says so. A complete line that does not decode is an error naming
// file:line.
func ReadLog(path string) (ms []Measurement, torn string, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, "", err
	}
	lines := bytes.Split(data, []byte{'\n'})
	for i, line := range lines {
		if i == len(lines)-1 {
			if len(line) > 0 {
				torn = fmt.Sprintf("%s:%d: last line dropped (%d bytes without a newline): a write the kill cut short", path, i+1, len(line))
			}
			break
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var m Measurement
		if err := json.Unmarshal(line, &m); err != nil {
			return nil, "", fmt.Errorf("%s:%d: measurement: %w", path, i+1, err)
		}
		ms = append(ms, m)
	}
	return ms, torn, nil
}

// Reopen continues a run directory: the measurement log is replaced (temp
// file, fsync, rename) by the measurements in doc, which the caller read
// back and chose to keep, and further ones are appended to it.
func Reopen(dir string, doc Document) (*Store, error) {
	path := filepath.Join(dir, LogFile)
	tmp, err := os.CreateTemp(dir, ".measurements-*.jsonl")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(FileMode); err != nil {
		tmp.Close()
		return nil, err
	}
	w := bufio.NewWriter(tmp)
	for _, m := range doc.Measurements {
		line, err := json.Marshal(m)
		if err != nil {
			tmp.Close()
			return nil, err
		}
		w.Write(append(line, '\n'))
	}
	if err := w.Flush(); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return nil, err
	}
	log, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, FileMode)
	if err != nil {
		return nil, err
	}
	doc.Schema = Schema
	if doc.Labs == nil {
		doc.Labs = []Lab{}
	}
	if doc.Measurements == nil {
		doc.Measurements = []Measurement{}
	}
	doc.Summaries = []Summary{}
	doc.Fidelity = nil
	s := &Store{dir: dir, log: log, path: filepath.Join(dir, "results.json"), doc: doc}
	if err := s.flushLocked(); err != nil {
		log.Close()
		return nil, err
	}
	return s, nil
}
