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

  Arguments are SQL text (a column, an expression, a quoted literal),
  except datepart (a bare word: 'day'), part_number and limit_num
  (numbers), fields and inputs (lists) and the literal-making macros'
  values. Argument names are dbt's: packages pass them by keyword.
  Each macro gives one line of SQL, so that compiled models stay readable.
#}

{# ---- data types ------------------------------------------------------ #}

{% macro type_string() %}{{ return(adapter.dispatch('type_string', 'dbt')()) }}{% endmacro %}
{% macro default__type_string() %}{{ return('text') }}{% endmacro %}
{% macro redshift__type_string() %}{{ return('varchar') }}{% endmacro %}

{% macro type_int() %}{{ return(adapter.dispatch('type_int', 'dbt')()) }}{% endmacro %}
{% macro default__type_int() %}{{ return('integer') }}{% endmacro %}

{% macro type_bigint() %}{{ return(adapter.dispatch('type_bigint', 'dbt')()) }}{% endmacro %}
{% macro default__type_bigint() %}{{ return('bigint') }}{% endmacro %}

{% macro type_float() %}{{ return(adapter.dispatch('type_float', 'dbt')()) }}{% endmacro %}
{% macro default__type_float() %}{{ return('float') }}{% endmacro %}

{# 28 digits, 6 after the point: what packages expect of an unqualified numeric #}
{% macro type_numeric() %}{{ return(adapter.dispatch('type_numeric', 'dbt')()) }}{% endmacro %}
{% macro default__type_numeric() %}{{ return('numeric(28,6)') }}{% endmacro %}

{% macro type_timestamp() %}{{ return(adapter.dispatch('type_timestamp', 'dbt')()) }}{% endmacro %}
{% macro default__type_timestamp() %}{{ return('timestamp') }}{% endmacro %}

{% macro type_boolean() %}{{ return(adapter.dispatch('type_boolean', 'dbt')()) }}{% endmacro %}
{% macro default__type_boolean() %}{{ return('boolean') }}{% endmacro %}

{% macro cast(field, type) %}{{ return(adapter.dispatch('cast', 'dbt')(field, type)) }}{% endmacro %}
{% macro default__cast(field, type) %}cast({{ field }} as {{ type }}){% endmacro %}

{# Neither database has a cast that gives null instead of failing. #}
{% macro safe_cast(field, type) %}{{ return(adapter.dispatch('safe_cast', 'dbt')(field, type)) }}{% endmacro %}
{% macro default__safe_cast(field, type) %}cast({{ field }} as {{ type }}){% endmacro %}

{# Redshift cannot cast a boolean to a string type: a CASE says the same. #}
{% macro cast_bool_to_text(field) %}{{ return(adapter.dispatch('cast_bool_to_text', 'dbt')(field)) }}{% endmacro %}
{% macro default__cast_bool_to_text(field) %}cast({{ field }} as {{ dbt.type_string() }}){% endmacro %}
{% macro redshift__cast_bool_to_text(field) -%}
  case when {{ field }} then 'true' when not ({{ field }}) then 'false' end
{%- endmacro %}

{# ---- dates and times ------------------------------------------------- #}

{% macro current_timestamp() %}{{ return(adapter.dispatch('current_timestamp', 'dbt')()) }}{% endmacro %}
{% macro default__current_timestamp() %}current_timestamp{% endmacro %}
{% macro postgres__current_timestamp() %}now(){% endmacro %}
{% macro redshift__current_timestamp() %}getdate(){% endmacro %}

{# dbt.date(2024, 2, 29): a date from three numbers (or strings of digits: '02') #}
{% macro date(year, month, day) %}{{ return(adapter.dispatch('date', 'dbt')(year, month, day)) }}{% endmacro %}
{% macro default__date(year, month, day) -%}
  {%- set m = month | int -%}
  {%- set d = day | int -%}
  {%- set ymd = (year | int) ~ '-' ~ ('0' if m < 10 else '') ~ m ~ '-' ~ ('0' if d < 10 else '') ~ d -%}
  to_date('{{ ymd }}', 'YYYY-MM-DD')
{%- endmacro %}

{% macro dateadd(datepart, interval, from_date_or_timestamp) %}
  {{- return(adapter.dispatch('dateadd', 'dbt')(datepart, interval, from_date_or_timestamp)) -}}
{% endmacro %}
{# PostgreSQL's intervals know no quarter: three months are one. #}
{% macro postgres__dateadd(datepart, interval, from_date_or_timestamp) %}
  {%- set unit = '3 month' if datepart | lower == 'quarter' else '1 ' ~ datepart -%}
  {{- from_date_or_timestamp }} + ((interval '{{ unit }}') * ({{ interval }}))
{%- endmacro %}
{% macro redshift__dateadd(datepart, interval, from_date_or_timestamp) %}
  {{- 'dateadd(' ~ datepart ~ ', ' ~ interval ~ ', ' ~ from_date_or_timestamp ~ ')' -}}
{%- endmacro %}

{#
  The number of datepart boundaries crossed from first_date to second_date,
  as Redshift's datediff counts them: from 2024-12-31 to 2025-01-01 is one
  year. PostgreSQL has no datediff: each part is a difference of fields,
  or of truncated timestamps for the parts of a day. Weeks start on
  Monday, as date_trunc('week') has them.
#}
{% macro datediff(first_date, second_date, datepart) %}
  {{- return(adapter.dispatch('datediff', 'dbt')(first_date, second_date, datepart)) -}}
{% endmacro %}
{% macro postgres__datediff(first_date, second_date, datepart) -%}
  {%- set part = datepart | lower -%}
  {%- set a = '(' ~ first_date ~ ')::timestamp' -%}
  {%- set b = '(' ~ second_date ~ ')::timestamp' -%}
  {%- set scale = {'hour': ' / 3600', 'minute': ' / 60', 'second': '', 'millisecond': ' * 1000', 'microsecond': ' * 1000000'} -%}
  {%- if part == 'day' -%}
    (({{ second_date }})::date - ({{ first_date }})::date)
  {%- elif part == 'week' -%}
    ((date_trunc('week', {{ b }})::date - date_trunc('week', {{ a }})::date) / 7)
  {%- elif part == 'month' -%}
    cast((date_part('year', {{ b }}) - date_part('year', {{ a }})) * 12 + date_part('month', {{ b }}) - date_part('month', {{ a }}) as bigint)
  {%- elif part == 'quarter' -%}
    cast((date_part('year', {{ b }}) - date_part('year', {{ a }})) * 4 + date_part('quarter', {{ b }}) - date_part('quarter', {{ a }}) as bigint)
  {%- elif part in scale -%}
    cast(extract(epoch from date_trunc('{{ part }}', {{ b }}) - date_trunc('{{ part }}', {{ a }})){{ scale[part] }} as bigint)
  {%- else -%}
    cast(date_part('{{ part }}', {{ b }}) - date_part('{{ part }}', {{ a }}) as bigint)
  {%- endif -%}
{%- endmacro %}
{% macro redshift__datediff(first_date, second_date, datepart) -%}
  datediff({{ datepart }}, {{ first_date }}, {{ second_date }})
{%- endmacro %}

{% macro date_trunc(datepart, date) %}{{ return(adapter.dispatch('date_trunc', 'dbt')(datepart, date)) }}{% endmacro %}
{% macro default__date_trunc(datepart, date) %}date_trunc('{{ datepart }}', {{ date }}){% endmacro %}

{# The last day of the datepart (month, quarter, year) date is in, as a date. #}
{% macro last_day(date, datepart) %}{{ return(adapter.dispatch('last_day', 'dbt')(date, datepart)) }}{% endmacro %}
{% macro default__last_day(date, datepart) -%}
  cast({{ dbt.dateadd('day', '-1', dbt.dateadd(datepart, '1', dbt.date_trunc(datepart, date))) }} as date)
{%- endmacro %}
{% macro redshift__last_day(date, datepart) -%}
  {%- if datepart | lower == 'month' -%}
    last_day({{ date }})
  {%- else -%}
    {{ dbt.default__last_day(date, datepart) }}
  {%- endif -%}
{%- endmacro %}

{# ---- strings ----------------------------------------------------------- #}

{# fields: a list of expressions. || (Redshift's concat() takes two) #}
{% macro concat(fields) %}{{ return(adapter.dispatch('concat', 'dbt')(fields)) }}{% endmacro %}
{% macro default__concat(fields) %}concat({{ fields | join(', ') }}){% endmacro %}
{% macro postgres__concat(fields) %}{{ fields | join(' || ') }}{% endmacro %}

{# md5 of the text form. varchar(max) on Redshift: a bare varchar is 256 characters, and a cast cuts. #}
{% macro hash(field) %}{{ return(adapter.dispatch('hash', 'dbt')(field)) }}{% endmacro %}
{% macro default__hash(field) %}md5(cast({{ field }} as {{ dbt.type_string() }})){% endmacro %}
{% macro redshift__hash(field) %}md5(cast({{ field }} as varchar(max))){% endmacro %}

{#
  part_number counts from 1; a negative one counts from the end.
  PostgreSQL (14 and later) does that itself; Redshift wants a positive
  part, so the string and the delimiter are reversed, then the part.
#}
{% macro split_part(string_text, delimiter_text, part_number) %}
  {{- return(adapter.dispatch('split_part', 'dbt')(string_text, delimiter_text, part_number)) -}}
{% endmacro %}
{% macro default__split_part(string_text, delimiter_text, part_number) -%}
  split_part({{ string_text }}, {{ delimiter_text }}, {{ part_number }})
{%- endmacro %}
{% macro redshift__split_part(string_text, delimiter_text, part_number) -%}
  {%- set n = part_number | int(0) if part_number is string else part_number -%}
  {%- if n is number and n < 0 -%}
    reverse(split_part(reverse({{ string_text }}), reverse({{ delimiter_text }}), {{ 0 - n }}))
  {%- else -%}
    split_part({{ string_text }}, {{ delimiter_text }}, {{ part_number }})
  {%- endif -%}
{%- endmacro %}

{% macro position(substring_text, string_text) %}{{ return(adapter.dispatch('position', 'dbt')(substring_text, string_text)) }}{% endmacro %}
{% macro default__position(substring_text, string_text) %}position({{ substring_text }} in {{ string_text }}){% endmacro %}

{% macro length(expression) %}{{ return(adapter.dispatch('length', 'dbt')(expression)) }}{% endmacro %}
{% macro default__length(expression) %}length({{ expression }}){% endmacro %}

{% macro replace(field, old_chars, new_chars) %}{{ return(adapter.dispatch('replace', 'dbt')(field, old_chars, new_chars)) }}{% endmacro %}
{% macro default__replace(field, old_chars, new_chars) %}replace({{ field }}, {{ old_chars }}, {{ new_chars }}){% endmacro %}

{% macro right(string_text, length_expression) %}{{ return(adapter.dispatch('right', 'dbt')(string_text, length_expression)) }}{% endmacro %}
{% macro default__right(string_text, length_expression) %}right({{ string_text }}, {{ length_expression }}){% endmacro %}

{# Text, not SQL: what goes between the quotes of a SQL string literal. #}
{% macro escape_single_quotes(expression) %}{{ return(adapter.dispatch('escape_single_quotes', 'dbt')(expression)) }}{% endmacro %}
{% macro default__escape_single_quotes(expression) %}{{ expression | replace("'", "''") }}{% endmacro %}

{# value as written, quoted: string_literal('x') is 'x' #}
{% macro string_literal(value) %}{{ return(adapter.dispatch('string_literal', 'dbt')(value)) }}{% endmacro %}
{% macro default__string_literal(value) %}'{{ value }}'{% endmacro %}

{# ---- aggregates ------------------------------------------------------- #}

{#
  The measure's values joined by delimiter_text (SQL: the default is the
  literal ','), in the order of order_by_clause ("order by x desc"), the
  first limit_num of them. Redshift cannot cut an aggregate's array: with
  a limit, the joined text is cut after the limit_num-th part, which
  assumes no value holds the delimiter.
#}
{% macro listagg(measure, delimiter_text="','", order_by_clause=none, limit_num=none) %}
  {{- return(adapter.dispatch('listagg', 'dbt')(measure, delimiter_text, order_by_clause, limit_num)) -}}
{% endmacro %}
{% macro postgres__listagg(measure, delimiter_text, order_by_clause, limit_num) -%}
  {%- if limit_num -%}
    array_to_string((array_agg({{ measure }}{{ ' ' ~ order_by_clause if order_by_clause else '' }}))[1:{{ limit_num }}], {{ delimiter_text }})
  {%- else -%}
    string_agg({{ measure }}, {{ delimiter_text }}{{ ' ' ~ order_by_clause if order_by_clause else '' }})
  {%- endif -%}
{%- endmacro %}
{% macro redshift__listagg(measure, delimiter_text, order_by_clause, limit_num) -%}
  {%- set all = 'listagg(' ~ measure ~ ', ' ~ delimiter_text ~ ')' ~ (' within group (' ~ order_by_clause ~ ')' if order_by_clause else '') -%}
  {%- set n = limit_num | int(0) if limit_num is string else limit_num -%}
  {%- if limit_num and not (n is integer and n > 0) -%}
    {{ exceptions.raise_compiler_error("dbt.listagg: on Redshift, limit_num must be a whole number above 0, not '" ~ limit_num ~ "'") }}
  {%- endif -%}
  {%- if limit_num -%}
    left({{ all }}, {% for i in range(1, n + 1) %}length(split_part({{ all }}, {{ delimiter_text }}, {{ i }})) + {% endfor %}{{ n - 1 }} * length(cast({{ delimiter_text }} as varchar)))
  {%- else -%}
    {{ all }}
  {%- endif -%}
{%- endmacro %}

{# Any one value of the group. PostgreSQL before 16 has no any_value: min is one
   (not of booleans). Redshift needs its own form, or it would take postgres__'s. #}
{% macro any_value(expression) %}{{ return(adapter.dispatch('any_value', 'dbt')(expression)) }}{% endmacro %}
{% macro default__any_value(expression) %}any_value({{ expression }}){% endmacro %}
{% macro postgres__any_value(expression) %}min({{ expression }}){% endmacro %}
{% macro redshift__any_value(expression) %}any_value({{ expression }}){% endmacro %}

{% macro bool_or(expression) %}{{ return(adapter.dispatch('bool_or', 'dbt')(expression)) }}{% endmacro %}
{% macro default__bool_or(expression) %}bool_or({{ expression }}){% endmacro %}

{# ---- set operations ---------------------------------------------------- #}

{% macro except() %}{{ return(adapter.dispatch('except', 'dbt')()) }}{% endmacro %}
{% macro default__except() %}except{% endmacro %}

{% macro intersect() %}{{ return(adapter.dispatch('intersect', 'dbt')()) }}{% endmacro %}
{% macro default__intersect() %}intersect{% endmacro %}

{# ---- arrays (Redshift's are SUPER values) ------------------------------ #}

{# inputs: a list of SQL expressions #}
{% macro array_construct(inputs=[], data_type=none) %}
  {{- return(adapter.dispatch('array_construct', 'dbt')(inputs, data_type or dbt.type_int())) -}}
{% endmacro %}
{% macro postgres__array_construct(inputs, data_type) %}array[{{ inputs | join(', ') }}]::{{ data_type }}[]{% endmacro %}
{% macro redshift__array_construct(inputs, data_type) %}array({{ inputs | join(', ') }}){% endmacro %}

{% macro array_append(array, new_element) %}{{ return(adapter.dispatch('array_append', 'dbt')(array, new_element)) }}{% endmacro %}
{% macro postgres__array_append(array, new_element) %}array_append({{ array }}, {{ new_element }}){% endmacro %}
{% macro redshift__array_append(array, new_element) %}array_concat({{ array }}, array({{ new_element }})){% endmacro %}

{% macro array_concat(array_1, array_2) %}{{ return(adapter.dispatch('array_concat', 'dbt')(array_1, array_2)) }}{% endmacro %}
{% macro postgres__array_concat(array_1, array_2) %}array_cat({{ array_1 }}, {{ array_2 }}){% endmacro %}
{% macro redshift__array_concat(array_1, array_2) %}array_concat({{ array_1 }}, {{ array_2 }}){% endmacro %}
