/*
 * notify.h: telling people how a scheduled run ended, by a JSON POST to a
 * webhook (libcurl): the run's summary as plain JSON, or as a Slack
 * message (`format: slack`). The webhook's URL is a secret: it is
 * rendered from sluice.yml only here, used for the request, and never
 * written to a message, a log or an artifact.
 */
#ifndef SLUICE_NOTIFY_H
#define SLUICE_NOTIFY_H

#include <jansson.h>
#include "project.h"
#include "schedule.h"
#include "util/err.h"

/*
 * Whether notifier n wants to hear of an end: ok (the run succeeded) and
 * was_failing (the schedule's previous run failed, so a success is a
 * recovery).
 */
int notify_wanted(const struct notifier *n, int ok, int was_failing);

/*
 * POST summary (a JSON object, borrowed; see docs/schedule.md for its
 * fields) to n's webhook, as is or as a Slack message. Blocks up to 10
 * seconds. 0 when sent, 1 when the webhook renders empty (an unset
 * env_var with a '' default: notifications off), or a negative code
 * with a message that names the notification and never the URL.
 */
int notify_send(const struct project *p, const struct notifier *n, const json_t *summary, struct sluice_err *err);

#endif
