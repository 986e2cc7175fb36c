/*
 * fuzz_yaml.c: the YAML layer every project file goes through
 * (engine/yaml.c over libyaml): parse the input as a document, look a key
 * up, and convert the tree to a value as the project loader does.
 * fuzz_project.c fuzzes the loader above it.
 */
#include "../../engine/yaml.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct err_list warnings = { 0 };   /* duplicate keys warn */
	struct ynode *root = NULL;
	struct arena a;

	arena_init(&a);
	if (yaml_load_str(&a, "fuzz.yml", (const char *)data, size, &root, &warnings, &err) == 0 && root) {
		ymap_get(root, "models");
		yaml_to_val(&a, root);
	}
	err_list_release(&warnings);
	arena_release(&a);
	return 0;
}
