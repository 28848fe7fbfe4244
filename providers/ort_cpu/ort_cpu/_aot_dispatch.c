/* The call side of ort_cpu's saved kernels (ort_cpu/_aot.py): a callable that picks, from the
 * exported entry points of one kernel (one per argument-type signature), the first whose types
 * the call's arguments have, and calls it; a call that matches none goes to the fallback (the
 * kernel compiled by numba in this process).
 *
 * A signature is a byte string with one code per argument, as ort_cpu/_aot_build.py writes it:
 *   'a' kind size ndim layout mut  an exact numpy array (6 bytes): dtype kind and item size,
 *                                   number of dimensions, layout C / F / A (A takes any), w when
 *                                   it must be writable, r when read-only arrays are taken too
 *   'i'                             a Python int within int64 or a numpy int64
 *   'f'                             a Python float or a numpy float64
 *   'b'                             a Python or numpy bool
 *   's' kind size                   a numpy scalar of that kind and item size
 *   'n'                             None
 *   't' count codes...              a tuple of count ('0' + count) items with their codes
 * These are the types numba's typeof gives those values, so a call takes the entry point numba
 * would have compiled for it. The numba unboxing in the entry points checks only an array's item
 * size, which is why the types are checked here.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>
#include <numpy/arrayscalars.h>

#if defined(NPY_2_0_API_VERSION)
#define ITEM_SIZE(d) PyDataType_ELSIZE(d)
#else
#define ITEM_SIZE(d) ((d)->elsize)
#endif

typedef struct {
    PyObject_HEAD
    PyObject *fallback; /* callable */
    PyObject *entries;  /* tuple of callables, one per signature */
    PyObject *codes;    /* tuple of bytes, the signatures */
    Py_ssize_t n;
} Dispatcher;

/* The code after the one ``o`` matches at ``c``, or NULL. */
static const char *match(PyObject *o, const char *c)
{
    switch (*c) {
    case 'a': {
        if (!PyArray_CheckExact(o))
            return NULL;
        PyArrayObject *a = (PyArrayObject *)o;
        PyArray_Descr *d = PyArray_DESCR(a);
        if (d->kind != c[1] || ITEM_SIZE(d) != c[2] - '0' || PyArray_NDIM(a) != c[3] - '0')
            return NULL;
        if (!PyArray_ISNBO(d->byteorder) || !PyArray_ISALIGNED(a))
            return NULL;
        int flags = PyArray_FLAGS(a);
        char layout = (flags & NPY_ARRAY_C_CONTIGUOUS)   ? 'C'
                      : (flags & NPY_ARRAY_F_CONTIGUOUS) ? 'F'
                                                         : 'A';
        if (c[4] != 'A' && c[4] != layout)
            return NULL;
        if (c[5] == 'w' && !(flags & NPY_ARRAY_WRITEABLE))
            return NULL;
        return c + 6;
    }
    case 'i':
        if (PyLong_CheckExact(o)) {
            int overflow = 0;
            PyLong_AsLongLongAndOverflow(o, &overflow);
            return overflow ? NULL : c + 1;
        }
        return (Py_IS_TYPE(o, &PyLongArrType_Type) && sizeof(long) == 8) ||
                       Py_IS_TYPE(o, &PyLongLongArrType_Type)
                   ? c + 1
                   : NULL;
    case 'f':
        return PyFloat_CheckExact(o) || Py_IS_TYPE(o, &PyDoubleArrType_Type) ? c + 1 : NULL;
    case 'b':
        return PyBool_Check(o) || Py_IS_TYPE(o, &PyBoolArrType_Type) ? c + 1 : NULL;
    case 'n':
        return o == Py_None ? c + 1 : NULL;
    case 's': {
        if (!PyArray_IsScalar(o, Generic))
            return NULL;
        PyArray_Descr *d = PyArray_DescrFromScalar(o);
        if (d == NULL) {
            PyErr_Clear();
            return NULL;
        }
        int same = d->kind == c[1] && ITEM_SIZE(d) == c[2] - '0' && d->kind != 'V';
        Py_DECREF(d);
        return same ? c + 3 : NULL;
    }
    case 't': {
        Py_ssize_t n = c[1] - '0';
        if (!PyTuple_CheckExact(o) || PyTuple_GET_SIZE(o) != n)
            return NULL;
        c += 2;
        for (Py_ssize_t i = 0; i < n && c != NULL; i++)
            c = match(PyTuple_GET_ITEM(o, i), c);
        return c;
    }
    }
    return NULL;
}

static PyObject *dispatcher_call(Dispatcher *self, PyObject *args, PyObject *kwargs)
{
    if (kwargs == NULL || PyDict_GET_SIZE(kwargs) == 0) {
        Py_ssize_t n_args = PyTuple_GET_SIZE(args);
        for (Py_ssize_t k = 0; k < self->n; k++) {
            const char *c = PyBytes_AS_STRING(PyTuple_GET_ITEM(self->codes, k));
            Py_ssize_t i = 0;
            for (; i < n_args && c != NULL && *c != 0; i++)
                c = match(PyTuple_GET_ITEM(args, i), c);
            if (c != NULL && i == n_args && *c == 0)
                return PyObject_Call(PyTuple_GET_ITEM(self->entries, k), args, NULL);
        }
    }
    return PyObject_Call(self->fallback, args, kwargs);
}

static int dispatcher_init(Dispatcher *self, PyObject *args, PyObject *kwargs)
{
    PyObject *fallback, *entries, *codes;
    if (!PyArg_ParseTuple(args, "OO!O!:Dispatcher", &fallback, &PyTuple_Type, &entries,
                          &PyTuple_Type, &codes))
        return -1;
    if (!PyCallable_Check(fallback)) {
        PyErr_SetString(PyExc_TypeError, "Dispatcher: the fallback must be callable");
        return -1;
    }
    if (PyTuple_GET_SIZE(entries) != PyTuple_GET_SIZE(codes)) {
        PyErr_Format(PyExc_ValueError,
                     "Dispatcher: %zd entry points but %zd signatures; give one per entry point",
                     PyTuple_GET_SIZE(entries), PyTuple_GET_SIZE(codes));
        return -1;
    }
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(codes); k++) {
        if (!PyBytes_Check(PyTuple_GET_ITEM(codes, k)) ||
            !PyCallable_Check(PyTuple_GET_ITEM(entries, k))) {
            PyErr_Format(PyExc_TypeError,
                         "Dispatcher: signature %zd must be bytes and its entry point callable", k);
            return -1;
        }
    }
    Py_INCREF(fallback);
    Py_INCREF(entries);
    Py_INCREF(codes);
    Py_XSETREF(self->fallback, fallback);
    Py_XSETREF(self->entries, entries);
    Py_XSETREF(self->codes, codes);
    self->n = PyTuple_GET_SIZE(entries);
    return 0;
}

static void dispatcher_dealloc(Dispatcher *self)
{
    Py_XDECREF(self->fallback);
    Py_XDECREF(self->entries);
    Py_XDECREF(self->codes);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *dispatcher_signatures(Dispatcher *self, void *closure)
{
    if (self->codes == NULL)
        return PyTuple_New(0);
    Py_INCREF(self->codes);
    return self->codes;
}

static PyGetSetDef dispatcher_getset[] = {
    {"signatures", (getter)dispatcher_signatures, NULL, "the entry points' signature codes", NULL},
    {NULL},
};

static PyTypeObject DispatcherType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "_ort_cpu_dispatch.Dispatcher",
    .tp_doc = "Dispatcher(fallback, entries, signatures): call the first entry point whose "
              "signature the arguments have, else fallback",
    .tp_basicsize = sizeof(Dispatcher),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)dispatcher_init,
    .tp_dealloc = (destructor)dispatcher_dealloc,
    .tp_call = (ternaryfunc)dispatcher_call,
    .tp_getset = dispatcher_getset,
};

static struct PyModuleDef dispatch_module = {
    PyModuleDef_HEAD_INIT, "_ort_cpu_dispatch", "ort_cpu's saved-kernel dispatcher", -1, NULL,
};

PyMODINIT_FUNC PyInit__ort_cpu_dispatch(void)
{
    import_array();
    if (PyType_Ready(&DispatcherType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&dispatch_module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&DispatcherType);
    if (PyModule_AddObject(m, "Dispatcher", (PyObject *)&DispatcherType) < 0) {
        Py_DECREF(&DispatcherType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
