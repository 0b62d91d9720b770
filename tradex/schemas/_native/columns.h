/* The columnar decoder (columns.c), registered into tradex.schemas._native_codec. */
#ifndef TRADEX_COLUMNS_H
#define TRADEX_COLUMNS_H

#include <Python.h>

/* Adds ColumnDecoder and the column constants to ``module``; 0, or -1 with an exception. */
int columns_register(PyObject *module);

#endif
