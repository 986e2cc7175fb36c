/*
 * cmd-deps.c: `sluice deps [--upgrade]`: install the packages of
 * packages.yml (deps.c does the work) and say what was installed, and
 * from where. It needs no profile and no warehouse.
 */
#include <stdio.h>
#include <string.h>
#include "cmd.h"
#include "deps.h"
#include "session.h"
#include "ui.h"

static const char *const deps_flags[] = { "--upgrade", NULL };

int cmd_deps(int argc, char **argv)
{
	struct cli cli = { 0 };
	struct sluice_err err = SLUICE_ERR_INIT;
	struct deps_opts o = { NULL, 0 };
	struct deps_result r;
	size_t i;
	int rc, code = 0;

	if ((rc = cli_parse(&cli, argc, argv, deps_flags, &err))) {
		cli_release(&cli);
		return cmd_fail(&err);
	}
	for (i = 0; i < (size_t)cli.nargs && !err.code; i++) {
		if (!strcmp(cli.args[i], "--upgrade"))
			o.upgrade = 1;
		else
			err_set(&err, SLUICE_EUSAGE, "deps takes no arguments but --upgrade, not '%s'", cli.args[i]);
	}
	if (err.code) {
		cli_release(&cli);
		return cmd_fail(&err);
	}
	ui_init(cli.log_format);
	o.project_dir = cli.project_dir;
	rc = deps_install(&o, &r, &err);
	ui_list(&r.warnings, 1);
	if (rc) {
		code = cmd_fail(&err);
	} else if (!r.spec_file) {
		ui_info("no packages.yml or dependencies.yml: nothing to install");
	} else {
		for (i = 0; i < r.npkgs; i++) {
			const struct deps_pkg *p = &r.pkgs[i];
			if (p->sha && p->version && !strncmp(p->sha, p->version, strlen(p->version)))
				/* locked: the revision is the commit */
				ui_info("installed %s %.12s from %s %s", p->name, p->sha, p->kind, p->source);
			else if (p->sha)
				ui_info("installed %s %s (%.12s) from %s %s", p->name, p->version ? p->version : "HEAD", p->sha,
					p->kind, p->source);
			else
				ui_info("installed %s from %s %s", p->name, p->kind, p->source);
		}
		ui_info("%zu package%s in %s/, %s", r.npkgs, r.npkgs == 1 ? "" : "s", r.install_path,
			r.from_lock ? "as package-lock.yml says" : "package-lock.yml written");
	}
	deps_result_release(&r);
	cli_release(&cli);
	if (!code && ui_flush() < 0)
		code = 1;
	return code;
}
