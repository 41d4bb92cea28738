package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cloudimage/cloudimage"
	"github.com/cloudimage/cloudimage/client"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// configuredClient returns a client configured from the environment.
func configuredClient(e *env) *client.Client {
	c := client.New(e.or("CLOUDIMAGE_URL", "http://127.0.0.1:9292"))
	c.AppKey = e.getenv("CLOUDIMAGE_APPKEY")
	c.TenantID = e.getenv("CLOUDIMAGE_TENANT_ID")
	c.Username = e.getenv("CLOUDIMAGE_USERNAME")
	c.Password = e.getenv("CLOUDIMAGE_PASSWORD")
	return c
}

// newClient returns a configured client with a token: CLOUDIMAGE_TOKEN, or
// a new one issued with the configured credentials.
func newClient(cmd *cobra.Command, e *env) (*client.Client, error) {
	c := configuredClient(e)
	if c.Token = e.getenv("CLOUDIMAGE_TOKEN"); c.Token == "" {
		if _, err := c.IssueToken(cmd.Context()); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func imageCommand(e *env) *cobra.Command {
	cmd := group("image", "Work with images on a running server (CLOUDIMAGE_URL)")
	cmd.AddCommand(imageUploadCommand(e), imageListCommand(e), imageShowCommand(e), imageDeleteCommand(e),
		imageRestoreCommand(e))
	return cmd
}

func imageUploadCommand(e *env) *cobra.Command {
	var name, diskFormat, containerFormat, visibility, osType string
	var props []string
	cmd := &cobra.Command{
		Use:   "upload FILE",
		Short: "Create an image and upload FILE as its data",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			st, err := f.Stat()
			if err != nil {
				return err
			}
			if diskFormat == "" {
				if diskFormat, err = detectFormat(f); err != nil {
					return err
				}
			}
			if name == "" {
				name = filepath.Base(args[0])
			}
			attrs := map[string]any{"name": name, "disk_format": diskFormat, "container_format": containerFormat}
			if visibility != "" {
				attrs["visibility"] = visibility
			}
			if osType != "" {
				attrs["os_type"] = osType
			}
			for _, p := range props {
				k, v, ok := strings.Cut(p, "=")
				if !ok {
					return fmt.Errorf("property %q: want KEY=VALUE", p)
				}
				attrs[k] = v
			}
			c, err := newClient(cmd, e)
			if err != nil {
				return err
			}
			img, err := c.CreateImage(cmd.Context(), attrs)
			if err != nil {
				return createError(err, attrs)
			}
			var body io.Reader = f
			if isTerminal(e.stderr) {
				bar := progressbar.DefaultBytes(st.Size(), "uploading "+img.ID)
				r := progressbar.NewReader(f, bar)
				body = &r
			}
			if err := c.UploadImage(cmd.Context(), img.ID, body, st.Size()); err != nil {
				// The command made the image for this data: an image left
				// queued would only be clutter, counted by quotas.
				ctx, cancel := context.WithTimeout(context.WithoutCancel(cmd.Context()), 30*time.Second)
				defer cancel()
				if derr := c.DeleteImage(ctx, img.ID); derr != nil {
					return fmt.Errorf("%w (image %s was left queued: %v)", err, img.ID, derr)
				}
				return err
			}
			if img, err = c.GetImage(cmd.Context(), img.ID); err != nil {
				return err
			}
			return printImage(e, img)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&name, "name", "", "image name (default: the file's name)")
	fl.StringVar(&diskFormat, "disk-format", "", "disk format (default: guessed from the file's header)")
	fl.StringVar(&containerFormat, "container-format", "bare", "container format")
	fl.StringVar(&visibility, "visibility", "", "private or shared; public and community for admins")
	fl.StringVar(&osType, "os-type", "", "linux or windows (required by the nhn profile)")
	fl.StringArrayVar(&props, "property", nil, "extra property KEY=VALUE (repeatable)")
	return cmd
}

// createError adds to a refusal for a missing os_type the flag that gives
// one: the server names the property, not the command's way to set it.
func createError(err error, attrs map[string]any) error {
	if _, given := attrs["os_type"]; given || cloudimage.ErrorCode(err) != cloudimage.EINVALID ||
		!strings.Contains(err.Error(), "os_type") {
		return err
	}
	return fmt.Errorf("%w; set it with --os-type", err)
}

// detectFormat guesses the disk format from the file's header and its
// last bytes (a fixed VHD's footer), and rewinds the file.
func detectFormat(f *os.File) (string, error) {
	head := make([]byte, cloudimage.DetectHeaderSize)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", err
	}
	var tail []byte
	if end, err := f.Seek(0, io.SeekEnd); err != nil {
		return "", err
	} else if end >= cloudimage.VHDFooterSize {
		tail = make([]byte, cloudimage.VHDFooterSize)
		if _, err := f.ReadAt(tail, end-cloudimage.VHDFooterSize); err != nil {
			return "", err
		}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	return cloudimage.DetectDiskFormatEnds(head[:n], tail), nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func imageListCommand(e *env) *cobra.Command {
	var asJSON bool
	var limit int
	var marker string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List images through the NHN v1.0 API (needs CLOUDIMAGE_APPKEY)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(cmd, e)
			if err != nil {
				return err
			}
			opts := client.ListOptions{Marker: marker}
			if cmd.Flags().Changed("limit") {
				opts.Limit = &limit
			}
			images, err := c.ListImages(cmd.Context(), opts)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSONOut(e, images)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tSTATUS\tDISK FORMAT\tSIZE\tPUBLIC\tCREATED")
			for _, img := range images {
				df := ""
				if img.DiskFormat != nil {
					df = *img.DiskFormat
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%t\t%s\n",
					img.ID, img.Name, img.Status, df, img.Size, img.IsPublic, img.CreatedAt)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().IntVar(&limit, "limit", 0, "list at most this many images")
	cmd.Flags().StringVar(&marker, "marker", "", "list the images after this image ID")
	return cmd
}

func imageShowCommand(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show an image",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(cmd, e)
			if err != nil {
				return err
			}
			img, err := c.GetImage(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSONOut(e, img)
			}
			return printImage(e, img)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printImage(e *env, img *client.Image) error {
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	num := func(p *int64) string {
		if p == nil {
			return ""
		}
		return fmt.Sprint(*p)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	for _, row := range [][2]string{
		{"id", img.ID}, {"name", img.Name}, {"status", img.Status}, {"visibility", img.Visibility},
		{"protected", fmt.Sprint(img.Protected)}, {"disk_format", str(img.DiskFormat)},
		{"container_format", str(img.ContainerFormat)}, {"size", num(img.Size)},
		{"virtual_size", num(img.VirtualSize)}, {"checksum", str(img.Checksum)},
		{"os_hash_algo", str(img.HashAlgo)}, {"os_hash_value", str(img.HashValue)},
		{"owner", img.Owner}, {"tags", strings.Join(img.Tags, ",")},
		{"created_at", img.CreatedAt}, {"updated_at", img.UpdatedAt},
	} {
		fmt.Fprintf(tw, "%s\t%s\n", row[0], row[1])
	}
	for _, k := range slices.Sorted(maps.Keys(img.Properties)) {
		fmt.Fprintf(tw, "%s\t%s\n", k, img.Properties[k])
	}
	return tw.Flush()
}

func imageDeleteCommand(e *env) *cobra.Command {
	return eachImageCommand(e, "delete", "deleted", "Delete images",
		func(ctx context.Context, c *client.Client, id string) error { return c.DeleteImage(ctx, id) })
}

func imageRestoreCommand(e *env) *cobra.Command {
	return eachImageCommand(e, "restore", "restored",
		"Restore images that are pending delete (delayed delete; admins of their project only)",
		func(ctx context.Context, c *client.Client, id string) error { return c.RestoreImage(ctx, id) })
}

// eachImageCommand returns the command verb, which does fn to each image
// named, reports each success as "<done> ID" and goes on past failures,
// which it reports together at the end.
func eachImageCommand(e *env, verb, done, short string,
	fn func(ctx context.Context, c *client.Client, id string) error) *cobra.Command {
	return &cobra.Command{
		Use:   verb + " ID...",
		Short: short,
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(cmd, e)
			if err != nil {
				return err
			}
			var errs []error
			for _, id := range args {
				if err := fn(cmd.Context(), c, id); err != nil {
					errs = append(errs, fmt.Errorf("%s %s: %w", verb, id, err))
					continue
				}
				fmt.Fprintf(e.stdout, "%s %s\n", done, id)
			}
			return errors.Join(errs...)
		},
	}
}

func tokenCommand(e *env) *cobra.Command {
	cmd := group("token", "Work with tokens")
	var asJSON bool
	issue := &cobra.Command{
		Use:   "issue",
		Short: "Issue a token with the configured credentials",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := configuredClient(e).IssueToken(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSONOut(e, t)
			}
			fmt.Fprintf(e.stdout, "id:        %s\nissued_at: %s\nexpires:   %s\n", t.ID, t.IssuedAt, t.Expires)
			return nil
		},
	}
	issue.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(issue)
	return cmd
}
