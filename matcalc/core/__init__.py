"""The core: the expression tree (`expr`), the operator registry (`registry`: one row per
operator), the property table (`properties`), the constructors' normal form (`algebra`) and the
input limits (`limits`)."""
