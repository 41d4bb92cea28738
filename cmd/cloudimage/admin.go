package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/cloudimage/cloudimage"
	"github.com/spf13/cobra"
)

// The offline admin commands work on the database directly, the one of
// --database or the SQLite file under --data-dir; the server may be
// running or not.

// identityFunc is the body of an admin command.
type identityFunc func(cmd *cobra.Command, args []string, identity *cloudimage.IdentityService) error

// withIdentity returns a command body that runs fn on the identity service
// of the database that database names, or of the one under dataDir. It
// opens the database only: the blob store, and any upload a running
// server has in flight, are left alone.
func withIdentity(dataDir, database *string, fn identityFunc) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		dbb, err := parseDatabase(*database, *dataDir)
		if err != nil {
			return err
		}
		db, err := dbb.openExisting(cmd.Context())
		if err != nil {
			return err
		}
		defer db.Close()
		return fn(cmd, args, cloudimage.NewIdentityService(db, 0))
	}
}

func projectCommand(e *env, dataDir *string) *cobra.Command {
	cmd := group("project", "Manage projects (offline, on the database)")
	var database string
	databaseFlag(cmd, e, &database)
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a project and print its tenant ID and appkey",
		Args:  cobra.ExactArgs(1),
		RunE: withIdentity(dataDir, &database, func(cmd *cobra.Command, args []string, identity *cloudimage.IdentityService) error {
			p, err := identity.CreateProject(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "tenant id: %s\nappkey:    %s\nname:      %s\n", p.ID, p.AppKey, p.Name)
			return nil
		}),
	}
	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List projects with their tenant IDs and appkeys",
		Args:  cobra.NoArgs,
		RunE: withIdentity(dataDir, &database, func(cmd *cobra.Command, _ []string, identity *cloudimage.IdentityService) error {
			projects, err := identity.Projects(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				out := make([]map[string]string, len(projects))
				for i, p := range projects {
					out[i] = map[string]string{"tenant_id": p.ID, "name": p.Name, "appkey": p.AppKey}
				}
				return writeJSONOut(e, out)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TENANT ID\tNAME\tAPPKEY")
			for _, p := range projects {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", p.ID, p.Name, p.AppKey)
			}
			return tw.Flush()
		}),
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(create, list)
	return cmd
}

func userCommand(e *env, dataDir *string) *cobra.Command {
	cmd := group("user", "Manage users (offline, on the database)")
	var database string
	databaseFlag(cmd, e, &database)
	var project, role, password string
	create := &cobra.Command{
		Use:   "create --project P --role ROLE [--password PW] NAME",
		Short: "Create a user with a role in a project; a password is generated unless given",
		Args:  cobra.ExactArgs(1),
		RunE: withIdentity(dataDir, &database, func(cmd *cobra.Command, args []string, identity *cloudimage.IdentityService) error {
			u, pw, err := identity.CreateUser(cmd.Context(), project, args[0], password, cloudimage.Role(role))
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "user id:  %s\nusername: %s\nrole:     %s\n", u.ID, u.Name, role)
			if password == "" {
				fmt.Fprintf(e.stdout, "password: %s\n", pw)
			}
			return nil
		}),
	}
	f := create.Flags()
	f.StringVar(&project, "project", "", "the project: its tenant ID, name or appkey (required)")
	f.StringVar(&role, "role", string(cloudimage.RoleMember), "admin, member or reader")
	f.StringVar(&password, "password", "", "the user's API password (generated when empty)")
	create.MarkFlagRequired("project")
	cmd.AddCommand(create)
	return cmd
}

func writeJSONOut(e *env, v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
