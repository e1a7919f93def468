# CkptGen.cmake — generate C sources from .ckpt schemas in a CMake build, the way
# protobuf_generate_c / protoc-c rules do for .proto files.
#
# Installed as <prefix>/lib/cmake/ckpt/CkptGen.cmake. Usage (see docs/build-integration.md):
#
#   find_package(PkgConfig REQUIRED)
#   pkg_check_modules(CKPT REQUIRED IMPORTED_TARGET ckpt)
#   pkg_get_variable(CKPT_CMAKEDIR ckpt cmakedir)
#   include(${CKPT_CMAKEDIR}/CkptGen.cmake)
#
#   ckpt_generate(MODEL_SRCS schemas/app/model.ckpt
#                 BASE_DIR ${CMAKE_CURRENT_SOURCE_DIR}/schemas)
#   add_executable(trainer main.c ${MODEL_SRCS})   # not `app`: <build>/app/ holds outputs
#   target_include_directories(trainer PRIVATE ${CMAKE_CURRENT_BINARY_DIR})
#   target_link_libraries(trainer PRIVATE PkgConfig::CKPT)
#
# ckpt_generate(<out_var> <schema>... [BASE_DIR dir] [OUTPUT_DIR dir] [IMPORT_DIRS dir...])
#   Adds a custom command per schema running ckptgen, and sets <out_var> to the generated .c and
#   .h files (add them to a target's sources; CMake then runs the commands before compiling).
#   BASE_DIR    the import root the schemas live under (default: CMAKE_CURRENT_SOURCE_DIR);
#               BASE_DIR/app/model.ckpt becomes OUTPUT_DIR/app/model.ckpt.{c,h} and is imported
#               by other schemas as "app/model.ckpt".
#   OUTPUT_DIR  where generated files go (default: CMAKE_CURRENT_BINARY_DIR); put it on the
#               target's include path, generated files include each other by import path.
#   IMPORT_DIRS further import roots; the installed built-in schemas are always searched.
# Variables: CKPTGEN_EXECUTABLE (found beside this file's installation, or on PATH) and
# CKPT_SCHEMA_DIR (the built-in schemas) may be set beforehand to override the defaults.

include_guard(GLOBAL)

# <prefix>/lib/cmake/ckpt → <prefix>: the generator and schemas of the same installation.
get_filename_component(_CKPT_PREFIX "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)

if(NOT CKPTGEN_EXECUTABLE)
  # This installation's generator first; PATH only when the file was copied elsewhere.
  find_program(CKPTGEN_EXECUTABLE ckptgen PATHS "${_CKPT_PREFIX}/bin" NO_DEFAULT_PATH)
  if(NOT CKPTGEN_EXECUTABLE)
    find_program(CKPTGEN_EXECUTABLE ckptgen)
  endif()
endif()
if(NOT CKPT_SCHEMA_DIR)
  set(CKPT_SCHEMA_DIR "${_CKPT_PREFIX}/share/ckpt/schemas")
endif()

function(ckpt_generate out_var)
  cmake_parse_arguments(ARG "" "BASE_DIR;OUTPUT_DIR" "IMPORT_DIRS" ${ARGN})
  if(NOT CKPTGEN_EXECUTABLE)
    message(FATAL_ERROR "ckpt_generate: ckptgen not found; set CKPTGEN_EXECUTABLE")
  endif()
  set(schemas ${ARG_UNPARSED_ARGUMENTS})
  if(NOT schemas)
    message(FATAL_ERROR "ckpt_generate(${out_var}): no schema files given")
  endif()
  if(NOT ARG_BASE_DIR)
    set(ARG_BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
  endif()
  if(NOT ARG_OUTPUT_DIR)
    set(ARG_OUTPUT_DIR "${CMAKE_CURRENT_BINARY_DIR}")
  endif()
  get_filename_component(base "${ARG_BASE_DIR}" ABSOLUTE)
  get_filename_component(outdir "${ARG_OUTPUT_DIR}" ABSOLUTE)

  set(import_flags -I "${base}")
  foreach(dir IN LISTS ARG_IMPORT_DIRS)
    get_filename_component(dir "${dir}" ABSOLUTE)
    list(APPEND import_flags -I "${dir}")
  endforeach()
  list(APPEND import_flags -I "${CKPT_SCHEMA_DIR}")

  set(outputs)
  foreach(schema IN LISTS schemas)
    get_filename_component(abs "${schema}" ABSOLUTE)
    file(RELATIVE_PATH rel "${base}" "${abs}")
    if(rel MATCHES "^\\.\\./" OR IS_ABSOLUTE "${rel}")
      message(FATAL_ERROR "ckpt_generate: ${schema} is not below BASE_DIR ${base}")
    endif()
    set(out_c "${outdir}/${rel}.c")
    set(out_h "${outdir}/${rel}.h")
    set(out_d "${outdir}/${rel}.d")
    # Depfiles in custom commands work with Ninja and, since CMake 3.20, with Makefiles:
    # editing an imported schema or .proto then regenerates this one.
    set(depfile_args)
    if(CMAKE_VERSION VERSION_GREATER_EQUAL 3.20 OR CMAKE_GENERATOR MATCHES "Ninja")
      set(depfile_args DEPFILE "${out_d}")
    endif()
    add_custom_command(
      OUTPUT "${out_c}" "${out_h}"
      COMMAND "${CKPTGEN_EXECUTABLE}" ${import_flags} -o "${outdir}" --depfile "${out_d}" "${abs}"
      DEPENDS "${abs}" "${CKPTGEN_EXECUTABLE}"
      ${depfile_args}
      COMMENT "ckptgen ${rel}"
      VERBATIM)
    list(APPEND outputs "${out_c}" "${out_h}")
  endforeach()
  set(${out_var} ${outputs} PARENT_SCOPE)
endfunction()
