package relay

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"strconv"
	"time"
)

// restCredentialLifetime is how long credentials made from a shared
// secret stay valid. The server checks them only when an allocation is
// made or refreshed with a new nonce; a day covers a long allocation
// and is what hosted services commonly issue.
const restCredentialLifetime = 24 * time.Hour

// defaultRESTUser names the user in REST credentials when the URL names
// none; servers take any name and use it only in their logs.
const defaultRESTUser = "punchdrop"

// credentials returns the user name and password to log in with at now:
// the long-term ones of the URL, or ones made from its secret by the
// TURN REST API convention (draft-uberti-behave-turn-rest, as coturn's
// use-auth-secret and hosted services implement it): the user name is
// "<expiry unix time>:<user>", the password the base64 of
// HMAC-SHA1(secret, user name).
func (s Server) credentials(now time.Time) (user, pass string) {
	if s.Secret == "" {
		return s.Username, s.Password
	}
	name := s.Username
	if name == "" {
		name = defaultRESTUser
	}
	user = strconv.FormatInt(now.Add(restCredentialLifetime).Unix(), 10) + ":" + name
	mac := hmac.New(sha1.New, []byte(s.Secret))
	mac.Write([]byte(user))
	return user, base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
