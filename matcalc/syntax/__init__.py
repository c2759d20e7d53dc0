"""Reading and writing the notation: the text grammar (`grammar.lark`, `parser`), types and shapes
(`typer`), LaTeX in (`latex_in`), text and LaTeX out (`printing`) and the NumPy-style Python front
end (`symbols`)."""
