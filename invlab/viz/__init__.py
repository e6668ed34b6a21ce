"""Views: plots and figures (`plots`), the (alpha, beta) slider trainer (`widgets`), the drawing
explorer (`explorer`), per-class explanations (`explain`), figures as parts of a page (`site`)
and the Explore page's files (`web`)."""
