{% macro cents(col, scale=2) -%}
  {{ return(adapter.dispatch('cents')(col, scale)) }}
{%- endmacro %}
{% macro default__cents(col, scale) %}round({{ col }} / 100.0, {{ scale }}){% endmacro %}
{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}
{% set ns = namespace(cols=[], n=0) %}
{% for c in ['a', 'b', 'c'] if c != 'b' %}{% do ns.cols.append(c) %}{% set ns.n = ns.n + 1 %}{% endfor %}
select {{ ns.cols | map('upper') | join(', ') }}, {{ ns.n }} as n, {{ cents('price') }} as p
{% call wrap('b') %}{{ ref('x') }}{% endcall %}
{% filter upper %}lower text{% endfilter %}
