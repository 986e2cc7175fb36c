{% macro f(n, acc=[]) %}{% if n > 0 %}{{ f(n - 1, acc + [n]) }}{% else %}{{ return(acc | sort | join('-')) }}{% endif %}{% endmacro %}
{% macro v(a) %}{{ a }} {{ varargs }} {{ kwargs }}{% endmacro %}
{{ f(4) }} {{ v(1, 2, k=3) }}
{% test positive(model, column_name) %}select * from {{ model }} where {{ column_name }} <= 0{% endtest %}
{{ [{'n': 2}, {'n': 1}] | selectattr('n', 'gt', 1) | map(attribute='n') | list }} {{ 4 is divisibleby 2 }}
{% set d = {'a': 1} %}{% do d.update({'b': 2}) %}{{ d.items() | list }} {{ 'x' | indent(2, first=true) }}
