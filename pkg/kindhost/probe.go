package kindhost

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cnilab/cnilab/pkg/command"
)

// Probe image and container names; the cnl- prefix and the label let
// `cnilab down --all` find anything a killed probe left behind.
const (
	ProbeImage    = "cnl-kindhost-probe:v1" // plus "-<pid>"
	ProbeLabel    = "io.cnilab.kind-host=probe"
	probePath     = "/cnl-probe"
	capsSignature = "unable to apply caps"
	probeTimeout  = 90 * time.Second
)

// CheckPrivileged runs a real `docker run --rm --privileged` and a
// `docker exec --privileged` of a one-file image made with `docker import`
// (no registry is needed), and removes the containers and the image
// afterwards. The probe binary is the wrapper, which has a probe mode
// (`--cnl-probe caps|sleep`): the installed one, or one built from
// sys.Source; without either the check is not run and says so.
func CheckPrivileged(ctx context.Context, sys System) Privileged {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	bin, err := probeBinary(ctx, sys)
	if err != nil {
		return Privileged{Detail: fmt.Sprintf("not checked: %v", err)}
	}
	p := Privileged{Checked: true}
	fail := func(step string, err error) Privileged {
		p.Detail = fmt.Sprintf("%s: %v", step, err)
		p.CapsError = strings.Contains(err.Error(), capsSignature)
		return p
	}
	image, removeImage, err := importProbe(ctx, sys, bin)
	if err != nil {
		return fail("docker import", err)
	}
	defer removeImage()
	docker := func(args ...string) (command.Result, error) {
		return sys.Run.Run(ctx, command.Cmd{Name: "docker", Args: args})
	}

	suffix := strconv.Itoa(os.Getpid())
	runName := "cnl-kindhost-probe-run-" + suffix
	defer func() { _, _ = docker("rm", "-f", runName) }()
	res, err := docker("run", "--rm", "--privileged", "--label", ProbeLabel, "--name", runName, image, "--cnl-probe", "caps")
	if err != nil {
		return fail("docker run --privileged", err)
	}
	if !strings.HasPrefix(strings.TrimSpace(string(res.Stdout)), "CapEff=") {
		return fail("docker run --privileged", fmt.Errorf("probe printed %q, want CapEff=<mask>", strings.TrimSpace(string(res.Stdout))))
	}
	p.RunOK = true

	execName := "cnl-kindhost-probe-exec-" + suffix
	defer func() { _, _ = docker("rm", "-f", execName) }()
	if _, err := docker("run", "-d", "--privileged", "--label", ProbeLabel, "--name", execName, image, "--cnl-probe", "sleep"); err != nil {
		return fail("docker run -d --privileged", err)
	}
	res, err = docker("exec", "--privileged", execName, probePath, "--cnl-probe", "caps")
	if err != nil {
		return fail("docker exec --privileged", err)
	}
	p.ExecOK = true
	p.Detail = "docker run and docker exec --privileged work (" + strings.TrimSpace(string(res.Stdout)) + ")"
	return p
}

// ImportProbeImage imports the one-file probe image under a tag of its own
// (the pid: parallel test processes must not remove each other's) and
// returns the reference and a function that removes it. Containers run from
// it with `--cnl-probe sleep` stay up until removed.
func ImportProbeImage(ctx context.Context, sys System) (string, func(), error) {
	bin, err := probeBinary(ctx, sys)
	if err != nil {
		return "", nil, err
	}
	return importProbe(ctx, sys, bin)
}

func importProbe(ctx context.Context, sys System, bin []byte) (string, func(), error) {
	layer, err := probeTar(bin)
	if err != nil {
		return "", nil, err
	}
	image := ProbeImage + "-" + strconv.Itoa(os.Getpid())
	if _, err := sys.Run.Run(ctx, command.Cmd{Name: "docker", Args: []string{"import", "--change", `ENTRYPOINT ["` + probePath + `"]`, "-", image}, Stdin: bytes.NewReader(layer)}); err != nil {
		return "", nil, err
	}
	remove := func() {
		_, _ = sys.Run.Run(context.WithoutCancel(ctx), command.Cmd{Name: "docker", Args: []string{"rmi", "-f", image}})
	}
	return image, remove, nil
}

// probeBinary returns the wrapper's bytes: the installed wrapper, else a
// build from the source tree.
func probeBinary(ctx context.Context, sys System) ([]byte, error) {
	if bin, err := sys.ReadFile(WrapperPath); err == nil {
		return bin, nil
	}
	if sys.Source == "" || sys.GoBinary == "" {
		return nil, fmt.Errorf("no probe binary: %s is not installed and no cnilab source tree to build it from", WrapperPath)
	}
	dir, err := os.MkdirTemp("", "cnl-probe-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := dir + "/cnl-runc"
	if err := buildWrapper(ctx, sys, out); err != nil {
		return nil, err
	}
	return sys.ReadFile(out)
}

// probeTar is an image layer holding only the probe binary.
func probeTar(bin []byte) ([]byte, error) {
	if len(bin) == 0 {
		return nil, errors.New("empty probe binary")
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := &tar.Header{Name: strings.TrimPrefix(probePath, "/"), Mode: 0o755, Size: int64(len(bin)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, err
	}
	if _, err := tw.Write(bin); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
