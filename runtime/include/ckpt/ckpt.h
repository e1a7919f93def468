/* ckpt/ckpt.h — the umbrella header of libckpt: include this one. */
#ifndef CKPT_CKPT_H
#define CKPT_CKPT_H

#include "ckpt/api.h"
#include "ckpt/error.h"
#include "ckpt/dtype.h"
#include "ckpt/desc.h"
#include "ckpt/value.h"
#include "ckpt/array.h"
#include "ckpt/tree.h"
#include "ckpt/random.h"
#include "ckpt/handler.h"
#include "ckpt/registry.h"
#include "ckpt/io.h"
#include "ckpt/process_group.h"
#include "ckpt/layout.h"
#include "ckpt/record_handler.h"
#include "ckpt/checkpointer.h"
#include "ckpt/pbtxt.h"

/* The built-in args and handlers, generated from schemas/ckpt/builtin.ckpt by ckptgen. */
#include "ckpt/builtin.ckpt.h"
#include "ckpt/composite.h"
#include "ckpt/manager.h"

#endif
