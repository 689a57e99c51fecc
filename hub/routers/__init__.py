"""The hub's routes, one router per audience: ``devices`` (signed kiosk requests), ``phone`` (the page
behind the QR codes), ``operators`` (the bureau's API). ``hub.app.create_app`` includes them."""
