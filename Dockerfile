# sluice in a container: `sluice schedule` for the project baked in at
# /project (the demo project of this repository), in the foreground, as
# systemd, Kubernetes and Docker expect. docs/deploy.md explains it.
#
#   docker build -t sluice .
#   docker run --env-file .env sluice                 # the scheduler
#   docker run --env-file .env sluice --once nightly  # one run, for a CronJob
#
# Two stages: the build stage has the compiler and the -dev packages; the
# runtime stage only the shared libraries, psqlODBC, CA certificates and
# the time zone database, and runs as a user without privileges.

FROM debian:12-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
	build-essential pkg-config libpq-dev unixodbc-dev libjansson-dev libxxhash-dev \
	libcurl4-openssl-dev libyaml-dev libssl-dev zlib1g-dev libzstd-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile ./
COPY engine/ engine/
COPY connectors/ connectors/
RUN make sluice CFLAGS="-O2 -g"

FROM debian:12-slim AS runtime
# psql: the demo's shell model exports a mart with it.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
	libpq5 unixodbc odbc-postgresql libjansson4 libxxhash0 libcurl4 libyaml-0-2 libssl3 zlib1g libzstd1 \
	ca-certificates tzdata postgresql-client \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --create-home --home-dir /home/sluice sluice \
 && mkdir -p /project /etc/sluice \
 && chown sluice:sluice /project
COPY --from=build /src/sluice /usr/local/bin/sluice
COPY deploy/profiles.yml /etc/sluice/profiles.yml
COPY --chown=sluice:sluice sluice.yml /project/
COPY --chown=sluice:sluice models/ /project/models/
COPY --chown=sluice:sluice data-tests/ /project/data-tests/
ENV SLUICE_PROFILES_DIR=/etc/sluice
WORKDIR /project
USER sluice
# target/ and .sluice/ (local state) are written here; mount a volume on
# /project/.sluice to keep the state across containers.
VOLUME ["/project/.sluice"]
# SIGTERM: running nodes finish (up to --grace), then are cancelled; exit 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["sluice", "schedule"]
CMD ["--project-dir", "/project"]
