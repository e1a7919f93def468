/* core/orbax_handlers.c — Orbax's handler classes and the built-in handlers that read what they
 * write (see the header for the typestr spellings this covers). */
#include "core/orbax_handlers.h"

#include <string.h>

#include "ckpt/builtin.ckpt.h"

#define ORBAX_NAMESPACE "orbax.checkpoint."

static const ckpt_orbax_handler table[] = {
    /* v0: orbax.checkpoint[._src][.handlers].<module>.<class> */
    {"StandardCheckpointHandler", &ckpt_StandardCheckpointHandler_desc, CKPT_ORBAX_ITEM_PYTREE, 0},
    {"PyTreeCheckpointHandler", &ckpt_PyTreeCheckpointHandler_desc, CKPT_ORBAX_ITEM_PYTREE, 0},
    {"ArrayCheckpointHandler", &ckpt_ArrayCheckpointHandler_desc, CKPT_ORBAX_ITEM_PYTREE, 0},
    {"JsonCheckpointHandler", &ckpt_JsonCheckpointHandler_desc, CKPT_ORBAX_ITEM_JSON, 0},
    {"ProtoCheckpointHandler", &ckpt_ProtoCheckpointHandler_desc, CKPT_ORBAX_ITEM_PROTO, 0},
    {"JaxRandomKeyCheckpointHandler", &ckpt_JaxRandomKeyCheckpointHandler_desc,
     CKPT_ORBAX_ITEM_COMPOSITE, 0},
    {"NumpyRandomKeyCheckpointHandler", &ckpt_NumpyRandomKeyCheckpointHandler_desc,
     CKPT_ORBAX_ITEM_COMPOSITE, 0},
    {"CompositeCheckpointHandler", &ckpt_CompositeCheckpointHandler_desc,
     CKPT_ORBAX_ITEM_COMPOSITE, 0},
    /* v1: orbax.checkpoint.experimental.v1._src.handlers.<module>.<class>. Its PyTreeHandler
     * writes the v0 PyTree layout; its JsonHandler the v0 JSON text, as data.json. */
    {"PyTreeHandler", &ckpt_PyTreeCheckpointHandler_desc, CKPT_ORBAX_ITEM_PYTREE, 1},
    {"JsonHandler", &ckpt_JsonCheckpointHandler_desc, CKPT_ORBAX_ITEM_JSON, 1},
    {"ProtoHandler", &ckpt_ProtoCheckpointHandler_desc, CKPT_ORBAX_ITEM_PROTO, 1},
    {"DescriptorHandler", NULL, CKPT_ORBAX_ITEM_DESCRIPTOR, 1},
};

const ckpt_orbax_handler *ckpt_orbax_handler_find(const char *typestr) {
  if (typestr == NULL || strncmp(typestr, ORBAX_NAMESPACE, strlen(ORBAX_NAMESPACE)) != 0)
    return NULL;
  const char *dot = strrchr(typestr, '.');
  const char *cls = dot + 1; /* the namespace itself has a dot */
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
    if (strcmp(cls, table[i].class_name) == 0)
      return &table[i];
  return NULL;
}

bool ckpt_orbax_is_descriptor(const char *typestr) {
  const ckpt_orbax_handler *h = ckpt_orbax_handler_find(typestr);
  return h != NULL && h->item == CKPT_ORBAX_ITEM_DESCRIPTOR;
}
