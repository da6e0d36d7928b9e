"""Names that break naive Mermaid and DOT output (quotes, ``end``, markup,
non-ASCII), for ``tocsin graph``."""

from typing import Any

from tocsin import Signal

end = Signal(name="end")
début_de_commande = Signal(name='quote " and <script>alert(1)</script>')


def receiver_end(**kwargs: Any) -> None: ...


receiver_end.__qualname__ = 'end"]; click s1 call evil() %% <script>x</script>'


def o_x_héros(**kwargs: Any) -> None: ...


end.connect(receiver_end, sender='"sender" {end} \\ <b>')
début_de_commande.connect(o_x_héros, sender="o--x", dispatch_uid="a\nb")
début_de_commande.connect(receiver_end, weak=False)
