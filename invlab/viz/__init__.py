"""Views: plots and figures (`plots`), the (alpha, beta) slider trainer (`widgets`), the drawing
explorer (`explorer`) and per-class explanations (`explain`)."""
