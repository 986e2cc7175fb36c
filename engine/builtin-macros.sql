{#
  builtin-macros.sql: the macros of the `dbt` namespace that packages and
  projects call (dbt.type_string(), dbt.dateadd(...)), written for sluice.
  Built into the binary (the Makefile makes it a C string) and loaded by
  engine/macros.c as the package `dbt`, which every project has.

  Each cross-database macro is a dispatcher, `name`, that calls
  adapter.dispatch('name', 'dbt'): the project's own `postgres__name`
  (or `redshift__name`, `default__name`) wins, then the ones below.
  Redshift looks for redshift__, then postgres__, then default__.
  docs/templates.md lists them; each is run on PostgreSQL by the tests.
#}

{% macro type_string() %}{{ return(adapter.dispatch('type_string', 'dbt')()) }}{% endmacro %}
{% macro default__type_string() %}{{ return('text') }}{% endmacro %}
{% macro redshift__type_string() %}{{ return('varchar') }}{% endmacro %}

{% macro dateadd(datepart, interval, from_date_or_timestamp) %}
  {{- return(adapter.dispatch('dateadd', 'dbt')(datepart, interval, from_date_or_timestamp)) -}}
{% endmacro %}
{% macro postgres__dateadd(datepart, interval, from_date_or_timestamp) %}
  {{- from_date_or_timestamp }} + ((interval '1 {{ datepart }}') * ({{ interval }}))
{%- endmacro %}
{% macro redshift__dateadd(datepart, interval, from_date_or_timestamp) %}
  {{- 'dateadd(' ~ datepart ~ ', ' ~ interval ~ ', ' ~ from_date_or_timestamp ~ ')' -}}
{%- endmacro %}
